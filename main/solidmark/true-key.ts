/**
 * The true key of a keyed image is the grey level actually written into its 8-bit file, round(255 k) / 255,
 * not the float k drawn before quantisation (spec section 5): at delta = 0.005 the difference matters.
 */

/** The 8-bit grey level written into the border for a key in [0, 1). */
export function keyToByte(key: number): number {
  return Math.min(255, Math.max(0, Math.round(key * 255)));
}

/** The key an 8-bit keyed file holds: round(255 k) / 255. */
export function trueKey(key: number): number {
  return keyToByte(key) / 255;
}
