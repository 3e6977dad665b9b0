// The one mutable object the modules share: site key, endpoint, visitor id, popup settings, variants.
// key, ep (endpoint), vid (visitor id), P (popup settings after the experiments), variants.
export const S = { variants: {} };
