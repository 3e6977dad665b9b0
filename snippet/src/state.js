// The one mutable object the modules share: site key, endpoint, visitor id, popup settings, variants.
export var S = {
  key: "",
  ep: "",
  vid: "",
  P: {},
  variants: {},
};
