// mulberry32: a tiny seeded PRNG (32-bit state) for the demo recipes' shuffles and subset choices.
// The dataset and the masked LM's corpus depend on its exact outputs: do not change it.
export function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
