;; crt0 for mini-zelda: DMG, MBC1 (64 KiB).
;;
;; Clears all of WRAM (C000-DFFF) and HRAM (FF80-FFFE) so the game never reads
;; uninitialised memory, copies the OAM-DMA routine to FF80-FF89 (clear of the Link's
;; Awakening HRAM addresses FF98.. that the game keeps its state in), runs sdcc's
;; initialisers and calls main. The stack grows down from E000 (DFFF) into DC00-DFFF.
;;
;; All code (about 8.5 KiB) sits in bank 0, so the helper that switches ROM banks to read
;; data from banks 2 and 3 never unmaps running code.

        .module crt0
        .globl  _main
        .globl  _oam_dma
        .globl  _vram_row20
        .globl  _vram_tiles
        .globl  _vram_rows
        .globl  _expand_row
        .globl  _metatile_tiles
        .globl  _banked_copy
        .globl  _vcopy_len
        .globl  _bcopy_len
        .globl  _bcopy_bank

        VBLANK_FLAG = 0xC0A0

        .area   _HEADER (ABS)
        .org    0x00
        ret
        .org    0x08
        ret
        .org    0x10
        ret
        .org    0x18
        ret
        .org    0x20
        ret
        .org    0x28
        ret
        .org    0x30
        ret
        .org    0x38
        ;; rst 0x38 is what running erased ROM (0xFF) does: stop there.
        di
        halt
        jr      0x38
        .org    0x40
        jp      vblank_isr
        .org    0x48
        reti
        .org    0x50
        reti
        .org    0x58
        reti
        .org    0x60
        reti
        .org    0x100
        nop
        jp      init
        ;; 0x104-0x14F: header, written by makebin -Z.

        .area   _HOME
        .area   _CODE
        .area   _INITIALIZER
        .area   _GSINIT
        .area   _GSFINAL
        .area   _DATA
        .area   _INITIALIZED
        .area   _BSEG
        .area   _BSS
        .area   _HEAP

        .area   _HOME
init:
        di
        ld      sp, #0xE000
        ;; Zero WRAM C000-DFFF.
        ld      hl, #0xC000
        ld      bc, #0x2000
        xor     a
1$:     ld      (hl+), a
        dec     c
        jr      nz, 1$
        dec     b
        jr      nz, 1$
        ;; Zero HRAM FF80-FFFE.
        ld      hl, #0xFF80
        ld      c, #0x7F
2$:     ld      (hl+), a
        dec     c
        jr      nz, 2$
        ;; OAM-DMA routine to FF80.
        ld      hl, #dma_routine
        ld      de, #0xFF80
        ld      c, #dma_routine_end - dma_routine
3$:     ld      a, (hl+)
        ld      (de), a
        inc     de
        dec     c
        jr      nz, 3$
        ;; Explicitly initialised C globals.
        ld      de, #s__INITIALIZED
        ld      hl, #s__INITIALIZER
        ld      bc, #l__INITIALIZER
4$:     ld      a, b
        or      a, c
        jr      z, 5$
        ld      a, (hl+)
        ld      (de), a
        inc     de
        dec     bc
        jr      4$
5$:     call    gsinit
        call    _main
6$:     halt
        jr      6$

dma_routine:
        ldh     (0x46), a
        ld      a, #40
7$:     dec     a
        jr      nz, 7$
        ret
dma_routine_end:

;; The VBlank handler only raises a flag; the main loop does the VBlank work itself.
vblank_isr:
        push    af
        ld      a, #1
        ld      (VBLANK_FLAG), a
        pop     af
        reti

;; void oam_dma(void): copy the shadow OAM at C000 (LA's wOAMBuffer) to OAM.
_oam_dma:
        ld      a, #0xC0
        jp      0xFF80

;; void vram_row20(uint8_t *dst /* DE */, const uint8_t *src /* BC */): one 20-tile BG
;; map row (dst is 32-byte aligned, so only E changes). Unrolled: 5 cycles a byte.
_vram_row20:
        ld      h, b
        ld      l, c
        .rept   20
        ld      a, (hl+)
        ld      (de), a
        inc     e
        .endm
        ret

;; void vram_tiles(uint8_t *dst /* DE */, const uint8_t *src /* BC */): vcopy_len whole
;; tiles (16-byte aligned dst), unrolled per tile: about 85 cycles a tile.
_vram_tiles:
        ld      h, b
        ld      l, c
        ld      a, (_vcopy_len)
        ld      c, a
11$:
        .rept   16
        ld      a, (hl+)
        ld      (de), a
        inc     e
        .endm
        jr      nz, 12$
        inc     d
12$:    dec     c
        jr      nz, 11$
        ret

;; void vram_rows(uint8_t *dst /* DE */, const uint8_t *src /* BC */): vcopy_len BG map
;; rows of 20 tiles; src advances 20 bytes a row, dst 32 (rows are 32-byte aligned).
_vram_rows:
        ld      h, b
        ld      l, c
        ld      a, (_vcopy_len)
        ld      c, a
13$:
        .rept   20
        ld      a, (hl+)
        ld      (de), a
        inc     e
        .endm
        ld      a, e
        add     a, #12
        ld      e, a
        jr      nc, 14$
        inc     d
14$:    dec     c
        jr      nz, 13$
        ret

;; void expand_row(const uint8_t *cells /* DE */, uint8_t *out /* BC */): turn 10
;; metatile ids into 20 top-row tile ids at out[0..19] and 20 bottom-row ids at
;; out[20..39] (metatile_tiles holds TL, TR, BL, BR per metatile).
_expand_row:
        ld      a, #10
15$:    push    af
        ld      a, (de)
        inc     de
        push    de
        ld      l, a
        ld      h, #0
        add     hl, hl
        add     hl, hl
        ld      de, #_metatile_tiles
        add     hl, de
        ld      a, (hl+)
        ld      (bc), a
        inc     bc
        ld      a, (hl+)
        ld      (bc), a
        push    hl
        ld      hl, #19
        add     hl, bc
        ld      d, h
        ld      e, l
        pop     hl
        ld      a, (hl+)
        ld      (de), a
        inc     de
        ld      a, (hl)
        ld      (de), a
        inc     bc
        pop     de
        pop     af
        dec     a
        jr      nz, 15$
        ret

;; void banked_copy(uint8_t *dst /* DE */, const uint8_t *src /* BC */):
;; copies bcopy_len bytes from ROM bank bcopy_bank (mapped at 4000-7FFF) to RAM, then
;; maps bank 1 back. Lives in bank 0, so the switch never unmaps running code.
_banked_copy:
        ld      a, (_bcopy_bank)
        ld      (0x2000), a
        ld      h, b
        ld      l, c
        ld      a, (_bcopy_len)
        ld      c, a
        ld      a, (_bcopy_len + 1)
        ld      b, a
        inc     b
        inc     c
        jr      10$
9$:     ld      a, (hl+)
        ld      (de), a
        inc     de
10$:    dec     c
        jr      nz, 9$
        dec     b
        jr      nz, 9$
        ld      a, #1
        ld      (0x2000), a
        ret

        .area   _GSINIT
gsinit::
        .area   _GSFINAL
        ret
