/** Decompression-bomb guard for every decoder of user images: refuse images above this many pixels. */
export const MAX_INPUT_PIXELS = 64 * 1024 * 1024;
