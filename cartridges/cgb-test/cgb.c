/* cgb-test: draws a static picture that exercises the CGB's colour features and records
 * what it measured in work RAM bank 0 (see README.md for the layout). */
#include <stdint.h>

#define REG(a) (*(volatile uint8_t *)(a))
#define LCDC REG(0xFF40)
#define STAT REG(0xFF41)
#define LY REG(0xFF44)
#define IE REG(0xFFFF)
#define IF REG(0xFF0F)
#define KEY1 REG(0xFF4D)
#define VBK REG(0xFF4F)
#define HDMA1 REG(0xFF51)
#define HDMA2 REG(0xFF52)
#define HDMA3 REG(0xFF53)
#define HDMA4 REG(0xFF54)
#define HDMA5 REG(0xFF55)
#define BCPS REG(0xFF68)
#define BCPD REG(0xFF69)
#define OCPS REG(0xFF6A)
#define OCPD REG(0xFF6B)
#define SVBK REG(0xFF70)

/* Results (work RAM bank 0). */
#define RESULT ((volatile uint8_t *)0xC0C0)
#define VBLANKS (*(volatile uint8_t *)0xC0A0)

void wait_vblank(void);

/* 16-byte aligned sources for HDMA. */
/* Tile 1 (bank 0): top half colour 3 on the left four pixels, bottom half colour 1 on
 * the right four. Tile 2: a diagonal of colour 2. */
static const uint8_t __at(0x1000) tiles[48] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0, 0xF0,
    0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00, 0x0F, 0x00,
    0x00, 0x80, 0x00, 0x40, 0x00, 0x20, 0x00, 0x10,
    0x00, 0x08, 0x00, 0x04, 0x00, 0x02, 0x00, 0x01,
};
/* One map row (32 tiles) for the HBlank DMA: tile 2 everywhere. */
static const uint8_t __at(0x1100) map_row[32] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* Object and background colour for palette p, colour c: distinct RGB555 values. */
static uint16_t colour(uint8_t p, uint8_t c, uint8_t obj) {
    uint16_t r = (uint16_t)((p * 4 + c * 7 + obj * 11) & 31);
    uint16_t g = (uint16_t)((p * 9 + c * 3 + obj * 5) & 31);
    uint16_t b = (uint16_t)((31 - p * 3 - c * 5 + obj * 13) & 31);
    return (uint16_t)(r | (g << 5) | (b << 10));
}

static const uint8_t flips[5] = {0x00, 0x20, 0x40, 0x08, 0x60};

/* Busy-loop iterations between two VBlanks (CPU speed probe). */
static uint16_t spin_frame(void) {
    uint16_t n = 0;
    uint8_t v;
    wait_vblank();
    v = VBLANKS;
    while (VBLANKS == v) {
        n++;
    }
    return n;
}

void main(void) {
    uint8_t p, c, x, y, b;
    uint16_t col;
    volatile uint8_t *m;
    volatile uint8_t *oam = (volatile uint8_t *)0xFE00;

    IE = 0x01;
    IF = 0;
    __asm__("ei");
    wait_vblank();
    LCDC = 0; /* LCD off: VRAM, OAM and palettes are free */

    /* Palettes through the auto-incrementing index. */
    BCPS = 0x80;
    OCPS = 0x80;
    for (p = 0; p < 8; p++) {
        for (c = 0; c < 4; c++) {
            col = colour(p, c, 0);
            BCPD = (uint8_t)col;
            BCPD = (uint8_t)(col >> 8);
            col = colour(p, c, 1);
            OCPD = (uint8_t)col;
            OCPD = (uint8_t)(col >> 8);
        }
    }
    RESULT[8] = BCPS; /* 0xC0: index wrapped to 0, auto-increment kept */

    /* Tiles 0-2 into bank 0 with a general-purpose HDMA (3 blocks). */
    VBK = 0;
    HDMA1 = 0x10;
    HDMA2 = 0x00;
    HDMA3 = 0x00;
    HDMA4 = 0x00;
    HDMA5 = 0x02;
    RESULT[9] = HDMA5; /* 0xFF: done */

    /* Bank 1, tile 1: solid colour 2. */
    VBK = 1;
    m = (volatile uint8_t *)0x8010;
    for (b = 0; b < 16; b += 2) {
        m[b] = 0x00;
        m[b + 1] = 0xFF;
    }
    /* Attributes: palette (x + y) & 7 and a flip/bank pattern by column. */
    m = (volatile uint8_t *)0x9800;
    for (y = 0; y < 32; y++) {
        for (x = 0; x < 32; x++) {
            *m++ = (uint8_t)(((x + y) & 7) | flips[x % 5] | ((y == 5 && x < 10) ? 0x80 : 0));
        }
    }
    VBK = 0;
    m = (volatile uint8_t *)0x9800;
    for (y = 0; y < 32; y++) {
        for (x = 0; x < 32; x++) {
            *m++ = 1;
        }
    }

    /* Objects: 0 and 1 overlap; 0 has the larger X but the lower OAM index, so it is on
     * top on a CGB. Object 2 takes its tile from bank 1. Object 3 sits behind a
     * BG-priority tile (row 5). */
    for (b = 0; b < 160; b++) {
        oam[b] = 0;
    }
    oam[0] = 16 + 64; oam[1] = 8 + 84; oam[2] = 1; oam[3] = 2;
    oam[4] = 16 + 66; oam[5] = 8 + 80; oam[6] = 1; oam[7] = 5 | 0x20;
    oam[8] = 16 + 96; oam[9] = 8 + 40; oam[10] = 1; oam[11] = 3 | 0x08;
    oam[12] = 16 + 40; oam[13] = 8 + 20; oam[14] = 2; oam[15] = 6;

    /* Work RAM banks 1-7: each gets its own byte at D000; bank 0 selects bank 1. */
    for (b = 1; b < 8; b++) {
        SVBK = b;
        REG(0xD000) = (uint8_t)(0x10 + b);
    }
    SVBK = 0;
    REG(0xD001) = 0x55;
    for (b = 1; b < 8; b++) {
        SVBK = b;
        RESULT[b] = REG(0xD000);
    }
    SVBK = 1;
    RESULT[0] = REG(0xD001); /* 0x55: bank 0 selects bank 1 */
    RESULT[10] = SVBK;       /* 0xF9 */

    LCDC = 0x93; /* LCD, BG and objects on; tiles at 8000; map 9800 */

    /* HBlank DMA: map row 17 becomes tile 2, one block per HBlank. */
    HDMA1 = 0x11;
    HDMA2 = 0x00;
    HDMA3 = 0x1A;
    HDMA4 = 0x20;
    HDMA5 = 0x81;
    RESULT[11] = HDMA5 & 0x80; /* 0x00: running */
    while (HDMA5 != 0xFF) {
    }
    RESULT[12] = HDMA5;

    /* CPU speed: busy-loop count per frame before and after the switch. */
    col = spin_frame();
    RESULT[16] = (uint8_t)col;
    RESULT[17] = (uint8_t)(col >> 8);
    KEY1 = 1;
    __asm__("stop");
    __asm__("nop");
    RESULT[13] = KEY1; /* 0xFE: double speed, not armed */
    col = spin_frame();
    RESULT[18] = (uint8_t)col;
    RESULT[19] = (uint8_t)(col >> 8);
    RESULT[14] = 0xA5; /* done */
    for (;;) {
        wait_vblank();
    }
}
