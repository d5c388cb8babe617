/* A 256-byte table in ROM bank 2 (placed by the linker flag -Wl-b_BANK2=0x24000 in
 * cartridge.toml); the benchmark loop switches MBC1 to this bank and reads one entry. */
#include <stdint.h>

#pragma constseg BANK2

#define E(i) (uint8_t)((i) * 2 + 0x22)
#define ROW(b) E(b), E(b + 1), E(b + 2), E(b + 3), E(b + 4), E(b + 5), E(b + 6), E(b + 7), \
               E(b + 8), E(b + 9), E(b + 10), E(b + 11), E(b + 12), E(b + 13), E(b + 14), E(b + 15)

const uint8_t bank2_table[256] = {
    ROW(0), ROW(16), ROW(32), ROW(48), ROW(64), ROW(80), ROW(96), ROW(112),
    ROW(128), ROW(144), ROW(160), ROW(176), ROW(192), ROW(208), ROW(224), ROW(240),
};
