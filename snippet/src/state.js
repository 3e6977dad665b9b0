// The one mutable object the modules share: site key, endpoint, visitor id, popup settings, variants.
// key, ep (endpoint), vid (visitor id), P (popup settings after the experiments), variants,
// lang (the shopper's locale) and T (its fixed texts and the defaults of the texts the site left out).
export const S = { variants: {} };
