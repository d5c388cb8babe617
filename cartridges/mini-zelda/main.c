/*
 * mini-zelda: a tiny top-down Zelda-like for the DMG that keeps its state at Link's
 * Awakening's RAM addresses, so tools written for LA can be developed and tested on it.
 * See README.md for the world, the controls and the RAM table.
 *
 * Frame structure (one game update per VBlank, never more):
 *   HALT until the VBlank handler raises its flag
 *   -> VBlank work: OAM DMA, scroll/palette registers, bounded VRAM jobs
 *   -> wait until LY < 144, so the joypad is read and the game runs inside lines 0-143
 *      (an emulator that ends its frames at LY 144 and one that ends them at LY 0 then
 *      feed the same input to the same update)
 *   -> read the joypad, update the game, build the shadow OAM.
 */
#include <stdint.h>
#include <string.h>

#include "assets.h"

/* ---- hardware -------------------------------------------------------------------------- */

#define REG(a) (*(volatile uint8_t *)(a))
#define rP1 REG(0xFF00)
#define rIF REG(0xFF0F)
#define rLCDC REG(0xFF40)
#define rSCY REG(0xFF42)
#define rSCX REG(0xFF43)
#define rLY REG(0xFF44)
#define rBGP REG(0xFF47)
#define rOBP0 REG(0xFF48)
#define rOBP1 REG(0xFF49)
#define rWY REG(0xFF4A)
#define rWX REG(0xFF4B)
#define rIE REG(0xFFFF)

/* LCDC: LCD on, window map 9C00, window on, BG/window tiles 8800 (signed), BG map 9800,
 * 8x16 sprites, sprites on, BG on. */
#define LCDC_PLAY 0xE7
#define LCDC_TITLE 0x87
#define LCDC_BLANK 0x81
#define LCDC_GAMEOVER 0xE1

#define PAL_BG 0xE4
#define PAL_OBJ0 0xE0
#define PAL_OBJ1 0xD0

#define BTN_A 0x01
#define BTN_B 0x02
#define BTN_SELECT 0x04
#define BTN_START 0x08
#define BTN_RIGHT 0x10
#define BTN_LEFT 0x20
#define BTN_UP 0x40
#define BTN_DOWN 0x80

#define DIR_RIGHT 0
#define DIR_LEFT 1
#define DIR_UP 2
#define DIR_DOWN 3

/* ---- Link's Awakening addresses (the contract; see README.md) --------------------------- */
/* HRAM ones are macros: sdcc 4.2 can emit a broken `ldh` for __at variables in FF80+. */

__at(0xC000) uint8_t oam[160];              /* wOAMBuffer */
__at(0xC11C) uint8_t link_motion;           /* wLinkMotionState: 0 default, 7 passed out */
__at(0xC124) uint8_t room_transition;       /* wRoomTransitionState */
__at(0xC125) uint8_t room_transition_dir;   /* wRoomTransitionDirection */
__at(0xC137) uint8_t sword_anim;            /* wSwordAnimationState 0..4 */
__at(0xC15B) uint8_t using_shield;          /* wIsUsingShield */
__at(0xC19F) uint8_t dialog_state;          /* wDialogState */
__at(0xD800) uint8_t ow_status[256];        /* wOverworldRoomStatus, bit 0x80 visited */
__at(0xD900) uint8_t in_status[256];        /* wIndoorARoomStatus */
__at(0xDB00) uint8_t b_slot;                /* wInventoryItems.BButtonSlot */
__at(0xDB01) uint8_t a_slot;                /* wInventoryItems.AButtonSlot */
__at(0xDB44) uint8_t shield_level;          /* wShieldLevel */
__at(0xDB4E) uint8_t sword_level;           /* wSwordLevel */
__at(0xDB57) uint16_t death_count;          /* wDeathCount (low, high) */
__at(0xDB5A) uint8_t health;                /* wHealth, 8 per heart */
__at(0xDB5B) uint8_t max_hearts;            /* wMaxHearts */
__at(0xDB5D) uint8_t rupees_hi;             /* wRupeeCountHigh, BCD hundreds */
__at(0xDB5E) uint8_t rupees_lo;             /* wRupeeCountLow, BCD tens/units */
__at(0xDB65) uint8_t instrument1;           /* wHasInstrument1, bit 0x02 */
__at(0xDB95) uint8_t game_mode;             /* wGameplayType */
__at(0xDB96) uint8_t game_submode;          /* wGameplaySubtype */
__at(0xDBA5) uint8_t is_indoor;             /* wIsIndoor */
__at(0xDBAE) uint8_t indoor_room;           /* wIndoorRoom */
__at(0xDBB5) uint8_t kill_count;            /* wKillCount */
__at(0xDBC7) uint8_t invincible;            /* wInvincibilityCounter */
__at(0xDBD0) uint8_t small_keys;            /* wSmallKeysCount */
#define link_x (*(uint8_t *)0xFF98) /* hLinkPositionX */
#define link_y (*(uint8_t *)0xFF99) /* hLinkPositionY */
#define game_over_stage (*(uint8_t *)0xFF9C) /* hGameOverStage */
#define link_dir (*(uint8_t *)0xFF9E) /* hLinkDirection */
#define frame_counter (*(uint8_t *)0xFFE7) /* hFrameCounter */
#define map_room (*(uint8_t *)0xFFF6) /* hMapRoom */
#define map_id (*(uint8_t *)0xFFF7) /* hMapId */

/* mini-zelda's own bytes next to the OAM buffer (C0A0-C0AF, unused by LA). */
__at(0xC0A0) volatile uint8_t vblank_flag;  /* raised by the VBlank handler */
__at(0xC0A1) uint8_t dbg_update_ly;         /* highest LY seen when an update finished */
__at(0xC0A2) uint8_t dbg_vblank_ly;         /* most scanlines the VBlank work took (< 10) */
__at(0xC0A3) uint8_t dbg_late;              /* VBlank works skipped because the update ran late */
__at(0xC0A4) uint8_t cur_room;              /* index of the room record (rooms[] in bank 3) */
__at(0xC0A5) uint8_t state;                 /* ST_* below */
__at(0xC0A6) uint8_t dbg_ly;                /* LY when the last update finished */

#define ST_BOOT 0
#define ST_TITLE 1
#define ST_PLAY 2
#define ST_LOAD 3
#define ST_DIALOG 4
#define ST_DYING 5
#define ST_GAMEOVER 6

/* ---- asm helpers (crt0.s) ---------------------------------------------------------------- */

void oam_dma(void);
void vram_row20(uint8_t *dst, const uint8_t *src);
void vram_tiles(uint8_t *dst, const uint8_t *src);
void vram_rows(uint8_t *dst, const uint8_t *src);
void expand_row(const uint8_t *cells, uint8_t *out);
void banked_copy(uint8_t *dst, const uint8_t *src);
uint8_t vcopy_len;
uint8_t bcopy_bank;
uint16_t bcopy_len;

static void bank_read(uint8_t *dst, uint8_t bank, const uint8_t *src, uint16_t len)
{
    bcopy_bank = bank;
    bcopy_len = len;
    banked_copy(dst, src);
}

/* ---- state ------------------------------------------------------------------------------- */

static uint8_t joy, joy_prev, joy_new;
static uint16_t rng;

static uint8_t reg_scy, reg_bgp, reg_obp0, reg_lcdc, reg_wy;
static uint8_t cur_half;                    /* BG rows 0-15 (0) or 16-31 (1) show the room */

static uint8_t room[ROOM_SIZE];             /* current room record */
static uint8_t taken[NUM_ROOMS];            /* picked-up objects, one bit per object slot */

/* VRAM jobs done in the next VBlank. */
static uint8_t stage[360];                  /* a 20-wide screen of BG tile ids */
static uint8_t stage_rows, stage_next;
static uint8_t *stage_dst;                  /* VRAM address of the next row to copy */
static const uint8_t *stage_src;            /* its tiles in stage[] */
static uint8_t upload_buf[128];
static uint8_t upload_tiles;                /* tiles in upload_buf */
static uint8_t upload_next;                 /* next tile number to upload (BG then OBJ) */
static uint8_t *upload_dst;                 /* where upload_buf goes in VRAM */
static uint8_t hud_buf[20], hud_dirty;
static uint8_t row_buf[20], row_pending;
static uint8_t *row_dst;
static uint8_t cell_tiles[4][4], cell_count;
static uint8_t *cell_dst[4];
static uint8_t text_tiles[2], text_count;
static uint8_t *text_dst[2];

/* Loading a room. */
static uint8_t load_phase, load_timer, load_fade;
static uint8_t pend_room, pend_x, pend_y, pend_dir;
#define LP_FADE_OUT 1
#define LP_COPY 2
#define LP_FADE_IN 3
#define LOAD_EDGE 0
#define LOAD_FADE 1
#define LOAD_GAMEOVER 2

/* Link. */
static uint8_t walk_anim, sword_timer, knock_timer, knock_dir, hud_shown_hp, got_key_timer;
static uint8_t dying_timer, title_timer;

/* Entities. */
#define MAX_ENT 6
#define E_NONE 0
#define E_POOF 8
/* Kept in the first slots of LA's entity tables, so tools can watch enemies and items. */
__at(0xC200) uint8_t e_x[MAX_ENT];          /* wEntitiesPosXTable (centre, room pixels) */
__at(0xC210) uint8_t e_y[MAX_ENT];          /* wEntitiesPosYTable */
__at(0xC2E0) uint8_t e_timer[MAX_ENT];      /* wEntitiesTransitionCountdownTable */
__at(0xC360) uint8_t e_hp[MAX_ENT];         /* wEntitiesHealthTable */
__at(0xC380) uint8_t e_dir[MAX_ENT];        /* wEntitiesDirectionTable */
__at(0xC3A0) uint8_t e_type[MAX_ENT];       /* wEntitiesTypeTable (mini-zelda's OBJ_* ids) */
__at(0xC420) uint8_t e_inv[MAX_ENT];        /* wEntitiesFlashCountdownTable */
static uint8_t e_slot[MAX_ENT];

/* Dialog. */
static uint8_t msg_buf[1 + 4 * 32];
static uint8_t dlg_page, dlg_char, dlg_step;

/* ---- small helpers ----------------------------------------------------------------------- */

static uint8_t rand8(void)
{
    uint16_t x = rng;
    x ^= x << 7;
    x ^= x >> 9;
    x ^= x << 8;
    rng = x;
    return (uint8_t)x;
}

static uint8_t read_joypad(void)
{
    uint8_t d, b;
    rP1 = 0x20;
    d = rP1;
    d = rP1;
    rP1 = 0x10;
    b = rP1;
    b = rP1;
    b = rP1;
    b = rP1;
    rP1 = 0x30;
    return (uint8_t)(((~d & 0x0F) << 4) | (~b & 0x0F));
}

static uint8_t mt_at(uint8_t x, uint8_t y)
{
    return room[(y >> 4) * 10 + (x >> 4)];
}

static uint8_t flags_at(uint8_t x, uint8_t y)
{
    if (x >= 160 || y >= 128)
        return MF_SOLID;
    return metatile_flags[mt_at(x, y)];
}

static uint8_t *bg_row_addr(uint8_t half, uint8_t row)
{
    return (uint8_t *)(0x9800u + ((uint16_t)(half ? 16 + row : row) << 5));
}

/* ---- VBlank work ------------------------------------------------------------------------- */

static void vblank_work(void)
{
    uint8_t i;
    if (rLY < 144) {
        /* The update overran into the next frame: VRAM is not safe now. */
        dbg_late++;
        return;
    }
    if (state != ST_BOOT)
        oam_dma();
    rSCY = reg_scy;
    rBGP = reg_bgp;
    rOBP0 = reg_obp0;
    rWY = reg_wy;
    rLCDC = reg_lcdc;
    if (upload_tiles) {
        vcopy_len = upload_tiles;
        vram_tiles(upload_dst, upload_buf);
        upload_tiles = 0;
    }
    if (stage_next < stage_rows) {
        i = stage_rows - stage_next;
        if (i > 4)
            i = 4;
        vcopy_len = i;
        vram_rows(stage_dst, stage_src);
        stage_next += i;
        stage_dst += (uint16_t)i << 5;
        stage_src += i * 20;
    }
    if (row_pending) {
        vram_row20(row_dst, row_buf);
        row_pending = 0;
    }
    if (hud_dirty) {
        vram_row20((uint8_t *)0x9C20u, hud_buf);
        hud_dirty = 0;
    }
    for (i = 0; i < cell_count; i++) {
        uint8_t *d = cell_dst[i];
        d[0] = cell_tiles[i][0];
        d[1] = cell_tiles[i][1];
        d[32] = cell_tiles[i][2];
        d[33] = cell_tiles[i][3];
    }
    cell_count = 0;
    for (i = 0; i < text_count; i++)
        *text_dst[i] = text_tiles[i];
    text_count = 0;
    /* Lines used since VBlank began; 10 or more means VRAM writes spilled past VBlank. */
    i = rLY;
    i = i >= 144 ? i - 144 : i + 10;
    if (i > dbg_vblank_ly)
        dbg_vblank_ly = i;
}

/* ---- drawing helpers --------------------------------------------------------------------- */

static void stage_room(void)
{
    uint8_t r;
    const uint8_t *cells = room;
    uint8_t *out = stage;
    for (r = 0; r < 8; r++, cells += 10, out += 40)
        expand_row(cells, out);
}

static void start_stage_copy(uint8_t half, uint8_t rows)
{
    stage_dst = bg_row_addr(half, 0);
    stage_src = stage;
    stage_rows = rows;
    stage_next = 0;
}

/* Redraw one metatile cell of the current room in the next VBlank. */
static void queue_cell(uint8_t idx)
{
    const uint8_t *t;
    if (cell_count >= 4)
        return;
    t = metatile_tiles + room[idx] * 4;
    cell_dst[cell_count] = bg_row_addr(cur_half, (idx / 10) * 2) + (idx % 10) * 2;
    cell_tiles[cell_count][0] = t[0];
    cell_tiles[cell_count][1] = t[1];
    cell_tiles[cell_count][2] = t[2];
    cell_tiles[cell_count][3] = t[3];
    cell_count++;
}

static void replace_cells(uint8_t from, uint8_t to, uint8_t draw)
{
    uint8_t i;
    for (i = 0; i < 80; i++) {
        if (room[i] == from) {
            room[i] = to;
            if (draw)
                queue_cell(i);
        }
    }
}

static void build_hud(void)
{
    uint8_t i, h = health, c;
    memset(hud_buf, T_BLANK, 20);
    hud_buf[0] = T_CHAR_B;
    hud_buf[1] = T_SHIELD_ICON;
    hud_buf[3] = T_CHAR_A;
    hud_buf[4] = T_SWORD_ICON;
    hud_buf[6] = T_RUPEE_ICON;
    hud_buf[7] = T_DIGIT_0 + (rupees_hi & 0x0F);
    hud_buf[8] = T_DIGIT_0 + (rupees_lo >> 4);
    hud_buf[9] = T_DIGIT_0 + (rupees_lo & 0x0F);
    hud_buf[11] = T_KEY_ICON;
    hud_buf[12] = T_CHAR_X;
    hud_buf[13] = T_DIGIT_0 + (small_keys > 9 ? 9 : small_keys);
    for (i = 0; i < max_hearts && i < 5; i++) {
        if (h >= 8) {
            c = T_HEART_FULL;
            h -= 8;
        } else if (h >= 4) {
            c = T_HEART_HALF;
            h = 0;
        } else {
            c = T_HEART_EMPTY;
            h = 0;
        }
        hud_buf[15 + i] = c;
    }
    hud_dirty = 1;
}

static uint8_t hud_rupees_hi, hud_rupees_lo, hud_keys;

static void refresh_hud(void)
{
    if (hud_shown_hp != health || hud_rupees_hi != rupees_hi || hud_rupees_lo != rupees_lo ||
        hud_keys != small_keys) {
        hud_shown_hp = health;
        hud_rupees_hi = rupees_hi;
        hud_rupees_lo = rupees_lo;
        hud_keys = small_keys;
        build_hud();
    }
}

/* ---- rooms ------------------------------------------------------------------------------- */

static void read_room(uint8_t index)
{
    uint8_t id;
    bank_read(room, WORLD_BANK, rooms + (uint16_t)index * ROOM_SIZE, ROOM_SIZE);
    if (room[R_INDOOR]) {
        id = room[R_ID];
        if (in_status[id] & 0x10)
            replace_cells(MT_CHEST, MT_CHEST_OPEN, 0);
        if (in_status[id] & 0x04) {
            replace_cells(MT_KEYBLOCK, MT_DOORWAY, 0);
            replace_cells(MT_SHUTTER, MT_DOORWAY, 0);
            replace_cells(MT_SWITCH, MT_SWITCH_DOWN, 0);
        }
    }
}

static void spawn_entities(void)
{
    uint8_t i, n = 0, t;
    const uint8_t *o = room + R_OBJS;
    memset(e_type, E_NONE, MAX_ENT);
    for (i = 0; i < MAX_OBJS && n < MAX_ENT; i++, o += 3) {
        t = o[0];
        if (t == OBJ_NONE)
            break;
        if (taken[cur_room] & (1 << i))
            continue;
        e_type[n] = t;
        e_x[n] = o[1];
        e_y[n] = o[2];
        e_dir[n] = DIR_DOWN;
        e_timer[n] = 16 + (rand8() & 31);
        e_hp[n] = t == OBJ_SLIME ? 2 : 1;
        e_inv[n] = 0;
        e_slot[n] = i;
        n++;
    }
}

/* Start showing room `index` (already-visible half stays until the copy is done). */
static void begin_load(uint8_t index, uint8_t x, uint8_t y, uint8_t dir, uint8_t kind)
{
    pend_room = index;
    pend_x = x;
    pend_y = y;
    pend_dir = dir;
    load_fade = kind;
    state = ST_LOAD;
    load_timer = 0;
    if (kind == LOAD_EDGE) {
        read_room(index);
        stage_room();
        start_stage_copy(cur_half ^ 1, 16);
        load_phase = LP_COPY;
        room_transition = 2;
    } else {
        load_phase = LP_FADE_OUT;
        room_transition = 1;
    }
}

static const uint8_t fade_bg[4] = {PAL_BG, 0x90, 0x40, 0x00};
static const uint8_t fade_obj[4] = {PAL_OBJ0, 0x90, 0x40, 0x00};

static void finish_room(void)
{
    cur_half ^= 1;
    reg_scy = cur_half ? 128 : 0;
    cur_room = pend_room;
    link_x = pend_x;
    link_y = pend_y;
    link_dir = pend_dir;
    map_room = room[R_ID];
    is_indoor = room[R_INDOOR];
    map_id = 0x00;
    indoor_room = room[R_GRID];
    if (is_indoor)
        in_status[map_room] |= 0x80;
    else
        ow_status[map_room] |= 0x80;
    spawn_entities();
    knock_timer = 0;
    sword_anim = 0;
    sword_timer = 0;
}

static void update_load(void)
{
    load_timer++;
    switch (load_phase) {
    case LP_FADE_OUT:
        if ((load_timer & 3) == 0) {
            uint8_t step = load_timer >> 2;
            reg_bgp = fade_bg[step];
            reg_obp0 = fade_obj[step];
            if (step == 3) {
                if (load_fade == LOAD_GAMEOVER) {
                    bank_read(stage, WORLD_BANK, gameover_map, 320);
                } else {
                    read_room(pend_room);
                    stage_room();
                }
                start_stage_copy(cur_half ^ 1, 16);
                load_phase = LP_COPY;
                room_transition = 2;
                load_timer = 0;
            }
        }
        break;
    case LP_COPY:
        if (stage_next >= stage_rows) {
            if (load_fade == LOAD_GAMEOVER) {
                cur_half ^= 1;
                reg_scy = cur_half ? 128 : 0;
                reg_lcdc = LCDC_GAMEOVER;
                reg_bgp = PAL_BG;
                state = ST_GAMEOVER;
                game_over_stage = 2;
                room_transition = 0;
                return;
            }
            finish_room();
            if (load_fade == LOAD_EDGE) {
                state = ST_PLAY;
                room_transition = 0;
            } else {
                reg_lcdc = LCDC_PLAY;
                reg_wy = 128;
                load_phase = LP_FADE_IN;
                room_transition = 3;
                load_timer = 0;
            }
        }
        break;
    case LP_FADE_IN:
        if ((load_timer & 3) == 0) {
            uint8_t step = 3 - (load_timer >> 2);
            reg_bgp = fade_bg[step];
            reg_obp0 = fade_obj[step];
            if (step == 0) {
                state = ST_PLAY;
                room_transition = 0;
                if (game_mode != 0x0B) {
                    game_mode = 0x0B;
                    game_submode = 0x07;
                }
            }
        }
        break;
    }
}

/* ---- dialog ------------------------------------------------------------------------------ */

static void open_dialog(uint16_t msg)
{
    bank_read(msg_buf, WORLD_BANK, messages + msg, sizeof(msg_buf));
    dlg_page = 0;
    dlg_char = 0;
    dialog_state = 0x01;
    dlg_step = 0;
    state = ST_DIALOG;
    using_shield = 0;
    sword_anim = 0;
}

/* Box row r (0..4) into row_buf. */
static void box_row(uint8_t r)
{
    uint8_t l, m, rr;
    if (r == 0) {
        l = T_BOX_TL;
        m = T_BOX_T;
        rr = T_BOX_TR;
    } else if (r == 4) {
        l = T_BOX_BL;
        m = T_BOX_B;
        rr = T_BOX_BR;
    } else {
        l = T_BOX_L;
        m = T_BLANK;
        rr = T_BOX_R;
    }
    memset(row_buf, m, 20);
    row_buf[0] = l;
    row_buf[19] = rr;
    row_dst = bg_row_addr(cur_half, r);
    row_pending = 1;
}

static void restore_row(uint8_t r)
{
    uint8_t tmp[40];
    expand_row(room + (r >> 1) * 10, tmp);
    memcpy(row_buf, tmp + ((r & 1) ? 20 : 0), 20);
    row_dst = bg_row_addr(cur_half, r);
    row_pending = 1;
}

static void update_dialog(void)
{
    uint8_t s = dialog_state;
    if (s >= 0x01 && s <= 0x05) {
        box_row(s - 1);
        dialog_state = s == 0x05 ? 0x06 : s + 1;
    } else if (s == 0x06) {
        /* Two letters per frame: 16 frames for a page of 2 x 16. */
        uint8_t k;
        for (k = 0; k < 2; k++) {
            uint8_t line = dlg_char >> 4, col = dlg_char & 15;
            text_dst[k] = bg_row_addr(cur_half, 1 + line * 2) + 2 + col;
            text_tiles[k] = msg_buf[1 + dlg_page * 32 + dlg_char];
            dlg_char++;
        }
        text_count = 2;
        if (dlg_char == 32)
            dialog_state = (dlg_page + 1 < msg_buf[0]) ? 0x09 : 0x0C;
    } else if (s == 0x09) {
        if (joy_new & BTN_A) {
            dialog_state = 0x0A;
            box_row(1);
        }
    } else if (s == 0x0A) {
        box_row(3);
        dialog_state = 0x0B;
    } else if (s == 0x0B) {
        dlg_page++;
        dlg_char = 0;
        dialog_state = 0x06;
    } else if (s == 0x0C) {
        if (joy_new & BTN_A) {
            dialog_state = 0x0E;
            dlg_step = 0;
            restore_row(0);
        }
    } else if (s == 0x0E || s == 0x0F) {
        dlg_step++;
        restore_row(dlg_step);
        if (dlg_step == 2)
            dialog_state = 0x0F;
        if (dlg_step == 4) {
            dialog_state = 0x00;
            state = ST_PLAY;
        }
    }
}

/* ---- Link -------------------------------------------------------------------------------- */

/* Link's wall box: x-5..x+4, y-2..y+7. */
static uint8_t blocked(uint8_t x, uint8_t y)
{
    uint8_t l = x - 5, r = x + 4, t = y - 2, b = y + 7;
    if ((flags_at(l, t) | flags_at(r, t) | flags_at(l, b) | flags_at(r, b)) & MF_SOLID)
        return 1;
    /* The NPC blocks Link too. */
    {
        uint8_t i;
        for (i = 0; i < MAX_ENT; i++) {
            if (e_type[i] == OBJ_OLDMAN) {
                uint8_t dx = x - e_x[i] + 11, dy = y - e_y[i] + 8;
                if (dx < 22 && dy < 16)
                    return 1;
            }
        }
    }
    return 0;
}

/* Something Link pushed into: chest, locked door. */
static void push_into(uint8_t x, uint8_t y)
{
    uint8_t idx, m;
    if (x >= 160 || y >= 128)
        return;
    idx = (y >> 4) * 10 + (x >> 4);
    m = room[idx];
    if (m == MT_CHEST) {
        room[idx] = MT_CHEST_OPEN;
        queue_cell(idx);
        in_status[map_room] |= 0x10;
        small_keys++;
        got_key_timer = 48;
    } else if (m == MT_KEYBLOCK && small_keys) {
        small_keys--;
        in_status[map_room] |= 0x04;
        replace_cells(MT_KEYBLOCK, MT_DOORWAY, 1);
    }
}

static void hurt_link(uint8_t amount, uint8_t from_dir)
{
    if (invincible || health == 0)
        return;
    health = health > amount ? health - amount : 0;
    invincible = 48;
    if (from_dir != 0xFF) {
        knock_dir = from_dir;
        knock_timer = 8;
    }
    if (health == 0) {
        link_motion = 0x07;
        death_count++;
        state = ST_DYING;
        dying_timer = 0;
        game_over_stage = 1;
        sword_anim = 0;
        using_shield = 0;
        knock_timer = 0;
    }
}

static void add_rupees(uint8_t n)
{
    /* BCD add with cap at 999, as LA does. */
    while (n--) {
        if (rupees_hi == 0x09 && rupees_lo == 0x99)
            return;
        if ((rupees_lo & 0x0F) == 9) {
            if (rupees_lo == 0x99) {
                rupees_lo = 0;
                rupees_hi++;
            } else {
                rupees_lo += 7;
            }
        } else {
            rupees_lo++;
        }
    }
}

static int8_t step_x(uint8_t d)
{
    return d == DIR_RIGHT ? 1 : d == DIR_LEFT ? -1 : 0;
}

static int8_t step_y(uint8_t d)
{
    return d == DIR_DOWN ? 1 : d == DIR_UP ? -1 : 0;
}

/* Try to leave the room through edge `d`; returns 1 if a load started. */
static uint8_t try_exit(uint8_t d)
{
    uint8_t code = room[R_EXITS + d], x = link_x, y = link_y;
    if (code == 0xFF)
        return 0;
    if (code & 0x80) {
        const uint8_t *w = warp_table + (code & 0x7F) * 4;
        begin_load(w[0], w[1], w[2], w[3], LOAD_FADE);
    } else {
        if (d == DIR_RIGHT)
            x = 6;
        else if (d == DIR_LEFT)
            x = 153;
        else if (d == DIR_UP)
            y = 119;
        else
            y = 4;
        begin_load(code, x, y, d, LOAD_EDGE);
    }
    room_transition_dir = d;
    return 1;
}

/* Move Link one pixel along one axis with corner assist; returns 1 if he moved. */
static uint8_t move_axis(int8_t dx, int8_t dy)
{
    uint8_t nx = link_x + dx, ny = link_y + dy;
    if (!blocked(nx, ny)) {
        link_x = nx;
        link_y = ny;
        return 1;
    }
    /* Pushing into something. */
    if (dx > 0)
        push_into(link_x + 5, link_y + 2);
    else if (dx < 0)
        push_into(link_x - 6, link_y + 2);
    else if (dy < 0)
        push_into(link_x, link_y - 3);
    else
        push_into(link_x, link_y + 8);
    /* Corner assist: slide around a corner when only one side of the box is blocked. */
    if (dx) {
        if (!blocked(nx, link_y - 3) && !blocked(link_x, link_y - 1)) {
            link_y--;
            return 1;
        }
        if (!blocked(nx, link_y + 3) && !blocked(link_x, link_y + 1)) {
            link_y++;
            return 1;
        }
    } else {
        if (!blocked(link_x - 3, ny) && !blocked(link_x - 1, link_y)) {
            link_x--;
            return 1;
        }
        if (!blocked(link_x + 3, ny) && !blocked(link_x + 1, link_y)) {
            link_x++;
            return 1;
        }
    }
    return 0;
}

static uint8_t npc_in_front(void)
{
    uint8_t i, px = link_x + step_x(link_dir) * 12, py = link_y + step_y(link_dir) * 12;
    for (i = 0; i < MAX_ENT; i++) {
        if (e_type[i] == OBJ_OLDMAN) {
            uint8_t dx = px - e_x[i] + 10, dy = py - e_y[i] + 10;
            if (dx < 20 && dy < 20)
                return 1;
        }
    }
    return 0;
}

static void update_link(void)
{
    int8_t dx = 0, dy = 0;
    uint8_t moved = 0, f;

    if (invincible)
        invincible--;
    if (got_key_timer)
        got_key_timer--;

    if (knock_timer) {
        knock_timer--;
        move_axis(step_x(knock_dir), step_y(knock_dir));
        move_axis(step_x(knock_dir), step_y(knock_dir));
        return;
    }

    /* Sword: A starts a swing (or talks to someone in front of Link). */
    if (sword_anim) {
        sword_timer++;
        if ((sword_timer & 3) == 0) {
            sword_anim++;
            if (sword_anim > 4) {
                sword_anim = 0;
                sword_timer = 0;
            }
        }
        return;
    }
    if (joy_new & BTN_A) {
        if (npc_in_front()) {
            open_dialog(MSG_OLDMAN);
            return;
        }
        sword_anim = 1;
        sword_timer = 0;
        using_shield = 0;
        return;
    }
    using_shield = (joy & BTN_B) ? 1 : 0;

    if (joy & BTN_RIGHT)
        dx = 1;
    else if (joy & BTN_LEFT)
        dx = -1;
    if (joy & BTN_DOWN)
        dy = 1;
    else if (joy & BTN_UP)
        dy = -1;
    if (dx || dy) {
        /* Facing: keep the current direction while it is still held (as LA does). */
        uint8_t keep = (link_dir == DIR_RIGHT && dx > 0) || (link_dir == DIR_LEFT && dx < 0) ||
                       (link_dir == DIR_UP && dy < 0) || (link_dir == DIR_DOWN && dy > 0);
        if (!keep)
            link_dir = dx > 0 ? DIR_RIGHT : dx < 0 ? DIR_LEFT : dy < 0 ? DIR_UP : DIR_DOWN;
    }
    /* Screen edges. */
    if (dx > 0 && link_x >= 154 && try_exit(DIR_RIGHT))
        return;
    if (dx < 0 && link_x <= 5 && try_exit(DIR_LEFT))
        return;
    if (dy < 0 && link_y <= 3 && try_exit(DIR_UP))
        return;
    if (dy > 0 && link_y >= 120 && try_exit(DIR_DOWN))
        return;
    if (dx && !((dx > 0 && link_x >= 154) || (dx < 0 && link_x <= 5)))
        moved |= move_axis(dx, 0);
    if (dy && !((dy > 0 && link_y >= 120) || (dy < 0 && link_y <= 3)))
        moved |= move_axis(0, dy);
    if (moved)
        walk_anim++;

    /* What Link stands on. */
    f = flags_at(link_x, link_y);
    if (f & MF_WARP) {
        const uint8_t *w = warp_table + room[R_WARP] * 4;
        begin_load(w[0], w[1], w[2], w[3], LOAD_FADE);
        room_transition_dir = link_dir;
        return;
    }
    if (f & MF_SWITCH) {
        uint8_t idx = (link_y >> 4) * 10 + (link_x >> 4);
        room[idx] = MT_SWITCH_DOWN;
        queue_cell(idx);
        in_status[map_room] |= 0x04;
        replace_cells(MT_SHUTTER, MT_DOORWAY, 1);
    }
    if (flags_at(link_x, link_y + 4) & MF_HURT)
        hurt_link(8, 0xFF);
}

/* ---- entities ---------------------------------------------------------------------------- */

static uint8_t ent_blocked(uint8_t x, uint8_t y)
{
    if (x < 8 || x > 152 || y < 8 || y > 120)
        return 1;
    return ((flags_at(x - 6, y - 6) | flags_at(x + 5, y - 6) | flags_at(x - 6, y + 5) | flags_at(x + 5, y + 5)) &
            (MF_SOLID | MF_WARP | MF_HURT)) != 0;
}

static uint8_t overlaps_link(uint8_t i, uint8_t reach)
{
    uint8_t dx = link_x - e_x[i] + reach, dy = link_y + 2 - e_y[i] + reach;
    return dx < reach * 2 && dy < reach * 2;
}

/* Direction from entity i towards Link along the larger axis. */
static uint8_t dir_to_link(uint8_t i)
{
    uint8_t ax = link_x > e_x[i] ? link_x - e_x[i] : e_x[i] - link_x;
    uint8_t ay = link_y > e_y[i] ? link_y - e_y[i] : e_y[i] - link_y;
    if (ax >= ay)
        return link_x > e_x[i] ? DIR_RIGHT : DIR_LEFT;
    return link_y > e_y[i] ? DIR_DOWN : DIR_UP;
}

static void ent_move(uint8_t i, uint8_t d)
{
    uint8_t nx = e_x[i] + step_x(d), ny = e_y[i] + step_y(d);
    if (!ent_blocked(nx, ny)) {
        e_x[i] = nx;
        e_y[i] = ny;
    } else {
        e_timer[i] = 0;
    }
}

static void kill_entity(uint8_t i)
{
    e_type[i] = E_POOF;
    e_timer[i] = 12;
    kill_count++;
}

static void take_object(uint8_t i)
{
    taken[cur_room] |= 1 << e_slot[i];
    e_type[i] = E_NONE;
}

/* Sword hit box for the current swing (states 2 and 3 reach out). */
static uint8_t sword_hits(uint8_t i)
{
    uint8_t cx, cy, dx, dy;
    if (sword_anim < 2 || sword_anim > 3)
        return 0;
    cx = link_x + step_x(link_dir) * 14;
    cy = link_y + 2 + step_y(link_dir) * 14;
    dx = cx - e_x[i] + 13;
    dy = cy - e_y[i] + 13;
    return dx < 26 && dy < 26;
}

static void update_entities(void)
{
    uint8_t i, t;
    for (i = 0; i < MAX_ENT; i++) {
        t = e_type[i];
        if (t == E_NONE)
            continue;
        if (t == E_POOF) {
            if (--e_timer[i] == 0)
                e_type[i] = E_NONE;
            continue;
        }
        if (t == OBJ_OCTOROK || t == OBJ_SLIME) {
            if (e_inv[i]) {
                e_inv[i]--;
                /* Knocked back by the sword. */
                if (e_inv[i] > 8) {
                    ent_move(i, link_dir);
                    ent_move(i, link_dir);
                }
            } else if (sword_hits(i)) {
                if (--e_hp[i] == 0) {
                    kill_entity(i);
                    continue;
                }
                e_inv[i] = 16;
            }
            if (t == OBJ_OCTOROK) {
                /* Wanders at half a pixel per frame, turning at random. */
                if (e_timer[i] == 0) {
                    uint8_t r = rand8();
                    e_dir[i] = r & 3;
                    e_timer[i] = 32 + (r & 0x30);
                }
                e_timer[i]--;
                if (frame_counter & 1)
                    ent_move(i, e_dir[i]);
            } else {
                /* Slime creeps towards Link at a quarter pixel per frame. */
                if ((frame_counter & 3) == 0) {
                    e_dir[i] = dir_to_link(i);
                    ent_move(i, e_dir[i]);
                }
            }
            if (overlaps_link(i, 11)) {
                uint8_t from = dir_to_link(i);
                /* The raised shield blocks an enemy in front of Link (it bounces off). */
                if (using_shield && link_dir == (from ^ 1)) {
                    e_inv[i] = 16;
                    e_dir[i] = from ^ 1;
                    ent_move(i, from ^ 1);
                    ent_move(i, from ^ 1);
                } else {
                    hurt_link(4, from);
                }
            }
        } else if (t == OBJ_RUPEE || t == OBJ_RUPEE5 || t == OBJ_HEART || t == OBJ_INSTRUMENT) {
            if (overlaps_link(i, 10)) {
                take_object(i);
                if (t == OBJ_RUPEE)
                    add_rupees(1);
                else if (t == OBJ_RUPEE5)
                    add_rupees(5);
                else if (t == OBJ_HEART) {
                    health += 8;
                    if (health > max_hearts * 8)
                        health = max_hearts * 8;
                } else {
                    instrument1 |= 0x02;
                    open_dialog(MSG_INSTRUMENT);
                    return;
                }
            }
        }
    }
}

/* ---- sprites ----------------------------------------------------------------------------- */

static uint8_t oam_n;

static void put_sprite(uint8_t x, uint8_t y, uint8_t tile, uint8_t attr)
{
    uint8_t *p;
    if (oam_n >= 40)
        return;
    p = oam + oam_n * 4;
    p[0] = y;
    p[1] = x;
    p[2] = tile;
    p[3] = attr;
    oam_n++;
}

/* A 16x16 sprite centred on (x, y) in playfield pixels. */
static void put16(uint8_t x, uint8_t y, uint8_t tile, uint8_t attr)
{
    if (attr & 0x20) {
        put_sprite(x, y + 8, tile + 2, attr);
        put_sprite(x + 8, y + 8, tile, attr);
    } else {
        put_sprite(x, y + 8, tile, attr);
        put_sprite(x + 8, y + 8, tile + 2, attr);
    }
}

static void draw_link(void)
{
    uint8_t tile, attr = 0, anim = (walk_anim >> 3) & 1;
    uint8_t d = link_dir;
    if (state == ST_DYING)
        d = (dying_timer >> 3) & 3;
    if (d == DIR_DOWN)
        tile = anim ? S_LINK_DOWN_B : S_LINK_DOWN_A;
    else if (d == DIR_UP)
        tile = anim ? S_LINK_UP_B : S_LINK_UP_A;
    else {
        tile = anim ? S_LINK_RIGHT_B : S_LINK_RIGHT_A;
        if (d == DIR_LEFT)
            attr = 0x20;
    }
    if (invincible && (invincible & 4) && state != ST_DYING)
        return;
    put16(link_x, link_y, tile, attr);

    if (sword_anim) {
        uint8_t reach = (sword_anim == 2 || sword_anim == 3) ? 14 : 9;
        if (link_dir == DIR_UP)
            put_sprite(link_x + 1, link_y - reach + 8, S_SWORD_V, 0);
        else if (link_dir == DIR_DOWN)
            put_sprite(link_x + 1, link_y + reach + 8, S_SWORD_V, 0x40);
        else if (link_dir == DIR_RIGHT)
            put16(link_x + reach, link_y + 2, S_SWORD_H, 0);
        else
            put16(link_x - reach, link_y + 2, S_SWORD_H, 0x20);
    } else if (using_shield) {
        if (link_dir == DIR_DOWN)
            put_sprite(link_x - 1, link_y + 12, S_SHIELD_V, 0);
        else if (link_dir == DIR_UP)
            put_sprite(link_x + 1, link_y + 2, S_SHIELD_V, 0);
        else if (link_dir == DIR_RIGHT)
            put_sprite(link_x + 9, link_y + 10, S_SHIELD_H, 0);
        else
            put_sprite(link_x - 9, link_y + 10, S_SHIELD_H, 0x20);
    }
    if (got_key_timer)
        put_sprite(link_x + 4, link_y - 8, S_KEY, 0);
}

static void draw_entities(void)
{
    uint8_t i, t, anim = (frame_counter >> 4) & 1;
    for (i = 0; i < MAX_ENT; i++) {
        t = e_type[i];
        if (t == E_NONE)
            continue;
        if (e_inv[i] & 2)
            continue;
        switch (t) {
        case OBJ_OCTOROK:
            put16(e_x[i], e_y[i], anim ? S_OCTOROK_B : S_OCTOROK_A, 0);
            break;
        case OBJ_SLIME:
            put16(e_x[i], e_y[i], anim ? S_SLIME_B : S_SLIME_A, 0);
            break;
        case OBJ_OLDMAN:
            put16(e_x[i], e_y[i], S_OLDMAN, anim ? 0x20 : 0);
            break;
        case OBJ_RUPEE:
            put_sprite(e_x[i] + 4, e_y[i] + 8, S_RUPEE, 0);
            break;
        case OBJ_RUPEE5:
            put_sprite(e_x[i] + 4, e_y[i] + 8, S_RUPEE, 0x10);
            break;
        case OBJ_HEART:
            put_sprite(e_x[i] + 4, e_y[i] + 8, S_HEART, 0);
            break;
        case OBJ_INSTRUMENT:
            put16(e_x[i], e_y[i], S_INSTRUMENT, 0);
            break;
        case E_POOF:
            put16(e_x[i], e_y[i], S_POOF, (e_timer[i] & 4) ? 0x20 : 0);
            break;
        }
    }
}

static void build_oam(void)
{
    oam_n = 0;
    if (state == ST_TITLE) {
        put16(80, 88, (frame_counter & 16) ? S_LINK_DOWN_B : S_LINK_DOWN_A, 0);
    } else if (state == ST_PLAY || state == ST_LOAD || state == ST_DIALOG || state == ST_DYING) {
        if (!(state == ST_LOAD && load_fade != LOAD_EDGE && load_phase == LP_COPY)) {
            draw_link();
            if (state != ST_DYING)
                draw_entities();
        }
    }
    memset(oam + oam_n * 4, 0, 160 - oam_n * 4);
}

/* ---- game flow --------------------------------------------------------------------------- */

static void new_life(void)
{
    health = max_hearts * 8;
    link_motion = 0x00;
    game_over_stage = 0;
    invincible = 0;
    knock_timer = 0;
    sword_anim = 0;
    using_shield = 0;
}

static void start_game(void)
{
    max_hearts = 3;
    a_slot = 0x01; /* sword */
    b_slot = 0x04; /* shield */
    sword_level = 1;
    shield_level = 1;
    new_life();
    begin_load(START_ROOM, START_X, START_Y, START_DIR, LOAD_FADE);
}

static void update_title(void)
{
    title_timer++;
    if ((joy_new & (BTN_START | BTN_A)) || title_timer >= 60)
        start_game();
}

static void update_dying(void)
{
    dying_timer++;
    if (dying_timer == 64) {
        begin_load(0, 0, 0, 0, LOAD_GAMEOVER);
    }
}

static void update_gameover(void)
{
    if (joy_new & (BTN_START | BTN_A)) {
        new_life();
        begin_load(START_ROOM, START_X, START_Y, START_DIR, LOAD_FADE);
    }
}

static uint8_t boot_step(void)
{
    /* Upload 6 tiles per VBlank from bank 2: BG tiles 0-127 to 9000, BG tiles 128+ to
     * 8800, then the sprite tiles to 8000 (a batch never straddles two of these). */
    uint8_t n = 6, t = upload_next, end;
    const uint8_t *src;
    if (t >= NUM_BG_TILES + NUM_OBJ_TILES)
        return 1;
    if (t < NUM_BG_TILES) {
        end = t < 128 ? (NUM_BG_TILES < 128 ? NUM_BG_TILES : 128) : NUM_BG_TILES;
        src = bg_tiles + ((uint16_t)t << 4);
        upload_dst = (uint8_t *)(t < 128 ? 0x9000u + ((uint16_t)t << 4) : 0x8000u + ((uint16_t)t << 4));
    } else {
        end = (uint8_t)(NUM_BG_TILES + NUM_OBJ_TILES);
        src = obj_tiles + ((uint16_t)(t - NUM_BG_TILES) << 4);
        upload_dst = (uint8_t *)(0x8000u + ((uint16_t)(t - NUM_BG_TILES) << 4));
    }
    if (n > end - t)
        n = end - t;
    bank_read(upload_buf, GFX_BANK, src, (uint16_t)n << 4);
    upload_tiles = n;
    upload_next = t + n;
    return 0;
}

static void update(void)
{
    switch (state) {
    case ST_BOOT:
        if (boot_step()) {
            if (stage_rows == 0) {
                bank_read(stage, WORLD_BANK, title_map, 360);
                start_stage_copy(0, 18);
                /* Top row of the HUD (window map 9C00): a separating line. */
                memset(row_buf, T_HUD_LINE, 20);
                row_dst = (uint8_t *)0x9C00u;
                row_pending = 1;
            } else if (stage_next >= stage_rows) {
                state = ST_TITLE;
                reg_bgp = PAL_BG;
                reg_obp0 = PAL_OBJ0;
                reg_lcdc = LCDC_TITLE;
                game_mode = 0x00;
            }
        }
        break;
    case ST_TITLE:
        update_title();
        break;
    case ST_LOAD:
        update_load();
        break;
    case ST_DIALOG:
        update_dialog();
        break;
    case ST_DYING:
        update_dying();
        break;
    case ST_GAMEOVER:
        update_gameover();
        break;
    case ST_PLAY:
        update_link();
        if (state == ST_PLAY)
            update_entities();
        break;
    }
    if (state != ST_BOOT && state != ST_TITLE && state != ST_GAMEOVER)
        refresh_hud();
    build_oam();
}

void main(void)
{
    uint8_t ly;

    rng = 0xACE1;
    /* Start fully white and without sprites or window until the tiles are in VRAM. */
    reg_lcdc = LCDC_BLANK;
    reg_bgp = 0x00;
    reg_obp0 = PAL_OBJ0;
    reg_wy = 128;
    reg_scy = 0;
    rOBP1 = PAL_OBJ1;
    rSCX = 0;
    rWX = 7;
    hud_shown_hp = 0xFF;
    state = ST_BOOT;

    rIF = 0;
    rIE = 0x01;
    __asm__("ei");

    for (;;) {
        /* Sleep until VBlank. (IME stays on: the update always ends far from LY 144, so the
         * flag cannot be raised between the check and the HALT; a `di`/`ei; halt` dance
         * would depend on how an emulator times EI against HALT.) */
        while (!vblank_flag)
            __asm__("halt\n\tnop");
        vblank_flag = 0;
        vblank_work();
        /* Run the update from line 1 on: past both ends a frame can be given (LY 144 and
         * the LY 153 -> 0 wrap, where LY already reads 0 on hardware). */
        while (rLY >= 144 || rLY == 0) {
        }
        joy_prev = joy;
        joy = read_joypad();
        joy_new = joy & ~joy_prev;
        frame_counter++;
        update();
        ly = rLY;
        dbg_ly = ly;
        if (vblank_flag)
            dbg_late++;
        else if (ly > dbg_update_ly)
            dbg_update_ly = ly;
    }
}
