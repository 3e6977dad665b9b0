// The one mutable object the modules share: site key, endpoint, visitor id, popup settings, variants.
// key, ep (endpoint), st (where the static files are), vid (visitor id), P (popup settings after the experiments), variants,
// lang (the shopper's locale) and T (its fixed texts and the defaults of the texts the site left out).
export const S = { variants: {} };
