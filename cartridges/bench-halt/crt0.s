;; crt0 for the benchmark cartridges (bench-halt, bench-cpu): DMG, MBC1.
;; Clears all WRAM and HRAM before C runs (so no uninitialised read can make two
;; emulators disagree), copies the OAM-DMA routine to HRAM at FF80, runs sdcc's
;; initialisers and calls main. The VBlank handler only counts VBlanks (C0A0/C0A1).

        .module crt0
        .globl  _main
        .globl  _oam_dma
        .globl  _wait_vblank

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
        ;; rst 0x38 is what executing erased ROM (0xFF) does: stop there visibly.
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

        .area   _CODE
init:
        di
        ld      sp, #0xE000
        ;; Zero WRAM C000-DFFF (8 KiB).
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
        ;; OAM-DMA routine to FF80 (the CPU may only touch HRAM during DMA).
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

vblank_isr:
        push    af
        push    hl
        ld      hl, #0xC0A0
        inc     (hl)
        jr      nz, 8$
        inc     hl
        inc     (hl)
8$:     pop     hl
        pop     af
        reti

;; void oam_dma(void): copy the shadow OAM at C000 to OAM.
_oam_dma:
        ld      a, #0xC0
        jp      0xFF80

;; void wait_vblank(void): HALT until the VBlank counter changes.
_wait_vblank:
        ld      a, (0xC0A0)
        ld      b, a
9$:     halt
        ld      a, (0xC0A0)
        cp      a, b
        jr      z, 9$
        ret

        .area   _GSINIT
gsinit::
        .area   _GSFINAL
        ret
