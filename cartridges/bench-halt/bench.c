/*
 * Benchmark cartridge shared by bench-halt (PRNG_STEPS=20) and bench-cpu (PRNG_STEPS=300).
 *
 * One "game loop" pass: wait for VBlank (HALT), OAM DMA of 40 sprites from C000,
 * BG scroll, joypad poll, an MBC1 bank write + read, PRNG_STEPS xorshift steps,
 * then move the 40 sprites. With 20 steps the pass ends well inside one frame, so the
 * CPU spends most of its time halted; with 300 steps one pass spans about 3 VBlanks.
 *
 * RAM it exposes (all little-endian):
 *   C000-C09F shadow OAM, C0A0/C0A1 VBlank count (ISR), C0A2/C0A3 loop count,
 *   C0A4-C0A7 PRNG state (u16 xorshift half, u16 LCG half), C0A8 joypad (1 = pressed; bit 0 A, 1 B,
 *   2 SELECT, 3 START, 4 RIGHT, 5 LEFT, 6 UP, 7 DOWN), C0A9 last byte read from the
 *   switchable bank, C0AA the bank it was read from (2 or 3).
 */
#include <stdint.h>

#ifndef PRNG_STEPS
#error "PRNG_STEPS must be defined by cartridge.toml"
#endif

#define IO(a) (*(volatile uint8_t *)(a))
#define P1 IO(0xFF00)
#define LCDC IO(0xFF40)
#define STAT IO(0xFF41)
#define SCY IO(0xFF42)
#define SCX IO(0xFF43)
#define LY IO(0xFF44)
#define BGP IO(0xFF47)
#define OBP0 IO(0xFF48)
#define IE IO(0xFFFF)
#define IF IO(0xFF0F)
#define MBC1_BANK IO(0x2000)

__at(0xC000) uint8_t oam[160];
__at(0xC0A2) uint16_t loop_count;
__at(0xC0A4) uint16_t rng_lo;
__at(0xC0A6) uint16_t rng_hi;
__at(0xC0A8) uint8_t joy;
__at(0xC0A9) uint8_t bank_byte;
__at(0xC0AA) uint8_t bank_used;

void oam_dma(void);
void wait_vblank(void);

/* Tables in banks 2 and 3 (bench_banks.c), both linked at 0x4000 of their bank. */
extern const uint8_t bank2_table[256];
extern const uint8_t bank3_table[256];

static const uint8_t tiles[48] = {
    /* tile 0: BG checker */
    0xF0, 0x00, 0xF0, 0x00, 0xF0, 0x00, 0xF0, 0x00,
    0x0F, 0xFF, 0x0F, 0xFF, 0x0F, 0xFF, 0x0F, 0xFF,
    /* tile 1: BG diagonal */
    0x81, 0x81, 0x42, 0x42, 0x24, 0x24, 0x18, 0x18,
    0x18, 0x18, 0x24, 0x24, 0x42, 0x42, 0x81, 0x81,
    /* tile 2: sprite ball */
    0x3C, 0x3C, 0x7E, 0x42, 0xFF, 0x81, 0xFF, 0x81,
    0xFF, 0x81, 0xFF, 0x81, 0x7E, 0x42, 0x3C, 0x3C,
};

/*
 * One PRNG step: a 16-bit xorshift (7, 9, 8) on the low half plus a 16-bit LCG on the
 * high half, added in. Chosen for its cost in sdcc code (about 150 CPU cycles with the
 * loads and stores), so that 300 steps make one loop pass span about 3 VBlanks.
 */
static void prng_step(void)
{
    uint16_t x = rng_lo;
    x ^= x << 7;
    x ^= x >> 9;
    x ^= x << 8;
    rng_hi = rng_hi * 25173u + 13849u;
    rng_lo = x + (rng_hi >> 8);
}

static uint8_t read_joypad(void)
{
    uint8_t d, b;
    P1 = 0x20; /* select D-pad (bit 4 low) */
    d = P1;
    d = P1;
    P1 = 0x10; /* select buttons (bit 5 low) */
    b = P1;
    b = P1;
    b = P1;
    b = P1;
    P1 = 0x30;
    return (uint8_t)(((~d & 0x0F) << 4) | (~b & 0x0F));
}

void main(void)
{
    uint16_t i, steps;
    uint8_t s, bits, *p;
    volatile uint8_t *v;

    /* Turn the LCD off inside VBlank (turning it off mid-frame harms real hardware). */
    while (LY < 144) {
    }
    LCDC = 0x00;
    v = (volatile uint8_t *)0x8000;
    for (i = 0; i < 48; i++)
        v[i] = tiles[i];
    v = (volatile uint8_t *)0x9800;
    for (i = 0; i < 1024; i++)
        v[i] = (uint8_t)(((i >> 5) ^ i) & 1);
    BGP = 0xE4;
    OBP0 = 0xD2;
    rng_lo = 0xF491;
    rng_hi = 0x2545;
    for (s = 0; s < 40; s++) {
        p = &oam[s * 4];
        p[0] = 16 + (uint8_t)(s * 3);
        p[1] = 8 + (uint8_t)(s * 4);
        p[2] = 2;
        p[3] = 0;
    }
    LCDC = 0x93; /* LCD on, BG+OBJ on, tiles at 0x8000, 8x8 sprites */
    IF = 0;
    IE = 0x01;
    __asm__("ei");

    for (;;) {
        wait_vblank();
        oam_dma();
        SCX++;
        if ((loop_count & 3) == 0)
            SCY++;
        joy = read_joypad();
        bank_used = 2 + (uint8_t)(loop_count & 1);
        MBC1_BANK = bank_used;
        bank_byte = (bank_used == 2 ? bank2_table : bank3_table)[(uint8_t)loop_count];
        MBC1_BANK = 1;
        for (steps = 0; steps < PRNG_STEPS; steps++)
            prng_step();
        /* Drift each sprite right by one bit of the PRNG; A held moves them all down. */
        bits = (uint8_t)rng_lo;
        p = oam;
        for (s = 0; s < 40; s++) {
            p[1] += bits & 1;
            p[0] += joy & 1;
            bits = (uint8_t)((bits >> 1) | (bits << 7));
            p += 4;
        }
        loop_count++;
    }
}
