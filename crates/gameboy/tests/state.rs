//! Save states, determinism and bad-input handling, on a small ROM assembled here.

use gameboy::{Buttons, Error, GameBoy, StateError};

/// Builds a 32 KiB ROM of cartridge type `cart_type` running a busy loop over work RAM
/// that is interrupted by VBlank, timer and joypad interrupts, each counting in RAM.
fn test_rom(cart_type: u8, ram_size: u8, title: &[u8]) -> Vec<u8> {
    let mut rom = vec![0u8; 0x8000];
    let mut put = |addr: usize, bytes: &[u8]| rom[addr..addr + bytes.len()].copy_from_slice(bytes);
    // Interrupt handlers: INC (D000 + n); RETI.
    for (vector, counter) in [(0x40usize, 0x00u8), (0x50, 0x01), (0x60, 0x02)] {
        put(vector, &[0xE5, 0x21, counter, 0xD0, 0x34, 0xE1, 0xD9]); // push hl; ld hl,D0nn; inc (hl); pop hl; reti
    }
    put(0x100, &[0x00, 0xC3, 0x50, 0x01]); // nop; jp 0150
    #[rustfmt::skip]
    let main = [
        0x31, 0xFE, 0xFF,       // ld sp,FFFE
        0x3E, 0x15, 0xE0, 0xFF, // ld a,15 (VBlank|timer|joypad); ldh (IE),a
        0x3E, 0x05, 0xE0, 0x07, // ld a,05; ldh (TAC),a
        0x3E, 0x10, 0xE0, 0x00, // ld a,10; ldh (P1),a (select buttons)
        0xFB,                   // ei
        // loop:
        0x21, 0x00, 0xC0,       // ld hl,C000
        0x06, 0x00,             // ld b,0
        // inner:
        0x7E,                   // ld a,(hl)
        0x80,                   // add a,b
        0x07,                   // rlca
        0x22,                   // ld (hl+),a
        0x04,                   // inc b
        0x7C,                   // ld a,h
        0xFE, 0xC4,             // cp C4
        0x20, 0xF6,             // jr nz,inner
        0xF0, 0x00,             // ldh a,(P1)
        0xEA, 0x10, 0xD0,       // ld (D010),a
        0x76,                   // halt
        0x18, 0xE8,             // jr loop
    ];
    put(0x150, &main);
    let mut t = [0u8; 16];
    t[..title.len()].copy_from_slice(title);
    put(0x134, &t[..15]);
    rom[0x147] = cart_type;
    rom[0x148] = 0;
    rom[0x149] = ram_size;
    let sum = rom[0x134..=0x14C]
        .iter()
        .fold(0u8, |x, &b| x.wrapping_sub(b).wrapping_sub(1));
    rom[0x14D] = sum;
    rom
}

fn rom() -> Vec<u8> {
    test_rom(0x00, 0, b"STATETEST")
}

#[test]
fn runs_are_deterministic() {
    let mut a = GameBoy::new(rom()).unwrap();
    let mut b = GameBoy::new(rom()).unwrap();
    for i in 0..120 {
        let buttons = if i % 7 < 3 {
            Buttons::A | Buttons::START
        } else {
            Buttons::NONE
        };
        a.set_buttons(buttons);
        b.set_buttons(buttons);
        a.run_frame(i % 10 == 0);
        b.run_frame(i % 10 == 0);
    }
    assert_eq!(a.save_state(), b.save_state());
    assert_eq!(a.frame()[..], b.frame()[..]);
    // The program really ran: VBlank, timer and joypad interrupts were counted.
    assert!(a.peek(0xD000) > 100, "VBlank count {}", a.peek(0xD000));
    assert!(a.peek(0xD001) > 0, "timer interrupts");
    assert!(a.peek(0xD002) > 0, "joypad interrupts");
    assert_eq!(a.frame_count(), 120);
    assert!(a.cycles() > 119 * 70224);
}

#[test]
fn save_load_round_trip_is_exact() {
    let mut gb = GameBoy::new(rom()).unwrap();
    gb.run_frames(30, false);
    let saved = gb.save_state();

    let run = |gb: &mut GameBoy| {
        for i in 0..60 {
            gb.set_buttons(if i % 5 == 0 {
                Buttons::B
            } else {
                Buttons::NONE
            });
            gb.run_frame(i % 3 == 0);
        }
        (
            gb.save_state(),
            gb.frame().to_vec(),
            gb.cycles(),
            gb.frame_count(),
        )
    };
    let first = run(&mut gb);
    gb.load_state(&saved).unwrap();
    assert_eq!(
        gb.save_state(),
        saved,
        "load then save gives the same bytes"
    );
    let second = run(&mut gb);
    assert_eq!(first, second);

    // A fresh machine with the same ROM continues identically from the state.
    let mut other = GameBoy::new(rom()).unwrap();
    other.load_state(&saved).unwrap();
    assert_eq!(run(&mut other), first);
}

#[test]
fn bad_states_are_rejected_and_leave_the_machine_unchanged() {
    let mut gb = GameBoy::new(rom()).unwrap();
    gb.run_frames(5, false);
    let good = gb.save_state();
    gb.run_frames(5, false);
    let before = gb.save_state();

    let check = |gb: &mut GameBoy, data: &[u8]| -> StateError {
        let err = gb.load_state(data).unwrap_err();
        assert_eq!(
            gb.save_state(),
            before,
            "machine changed after a rejected state: {err}"
        );
        err
    };

    assert!(matches!(check(&mut gb, &[]), StateError::Truncated { .. }));
    assert!(matches!(
        check(&mut gb, &good[..good.len() - 1]),
        StateError::Truncated { .. }
    ));
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(check(&mut gb, &longer), StateError::Size { .. }));

    let mut magic = good.clone();
    magic[0] ^= 0xFF;
    assert_eq!(check(&mut gb, &magic), StateError::BadMagic);

    let mut version = good.clone();
    version[8] = version[8].wrapping_add(1);
    assert!(matches!(
        check(&mut gb, &version),
        StateError::Version { .. }
    ));

    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x01;
    assert!(matches!(
        check(&mut gb, &corrupt),
        StateError::Checksum { .. }
    ));

    let mut other_rom = GameBoy::new(test_rom(0x00, 0, b"OTHERGAME")).unwrap();
    let foreign = other_rom.save_state();
    let err = check(&mut gb, &foreign);
    assert!(matches!(err, StateError::WrongRom { .. }), "{err}");
    assert!(err.to_string().contains("another ROM"));

    // The good state still loads after all that.
    gb.load_state(&good).unwrap();
    other_rom.run_frame(false);
}

/// Re-seals a tampered state with a correct CRC, as a crafted (not corrupted) state would be.
fn reseal(mut data: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&data[40..]);
    data[36..40].copy_from_slice(&crc.to_le_bytes());
    data
}

#[test]
fn crafted_states_with_a_valid_checksum_are_rejected() {
    let mut gb = GameBoy::new(rom()).unwrap();
    gb.run_frames(3, false);
    let good = gb.save_state();
    // Payload: CPU (19 bytes), then the bus starting with the cycle counter.
    let cycles_at = 40 + 19;
    for bad_cycles in [0u64, 5, u64::MAX - 3] {
        let mut data = good.clone();
        data[cycles_at..cycles_at + 8].copy_from_slice(&bad_cycles.to_le_bytes());
        let err = gb.load_state(&reseal(data)).unwrap_err();
        assert!(matches!(err, StateError::Invalid(_)), "{err}");
    }
    // Clock moved far from the peripherals' times: rejected instead of catching up for ages.
    let mut data = good.clone();
    let cycles = u64::from_le_bytes(data[cycles_at..cycles_at + 8].try_into().unwrap());
    data[cycles_at..cycles_at + 8].copy_from_slice(&(cycles + (1 << 30)).to_le_bytes());
    let err = gb.load_state(&reseal(data)).unwrap_err();
    assert!(matches!(err, StateError::Invalid(_)), "{err}");
    // A trailing byte inside a correctly sealed state.
    let mut data = good.clone();
    data.push(0);
    let total = data.len() as u32;
    data[12..16].copy_from_slice(&total.to_le_bytes());
    let err = gb.load_state(&reseal(data)).unwrap_err();
    assert!(matches!(err, StateError::Invalid(_)), "{err}");
    gb.load_state(&good).unwrap();
}

#[test]
fn random_state_bytes_never_panic() {
    let mut gb = GameBoy::new(rom()).unwrap();
    let good = gb.save_state();
    let mut x = 0x1234_5678_9ABC_DEF0u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..2000 {
        let mut data = good.clone();
        let n = (next() % 8) as usize + 1;
        for _ in 0..n {
            let i = (next() as usize) % data.len();
            data[i] = next() as u8;
        }
        let cut = (next() as usize) % (data.len() + 1);
        if next() % 4 == 0 {
            data.truncate(cut);
        }
        let _ = gb.load_state(&data);
        // The same damage behind a valid checksum reaches the payload parser.
        if data.len() > 40 {
            let total = data.len() as u32;
            data[12..16].copy_from_slice(&total.to_le_bytes());
            if gb.load_state(&reseal(data)).is_ok() {
                gb.run_frames(2, true);
            }
        }
    }
}

#[test]
fn bad_roms_give_clear_errors() {
    let good = rom();
    assert!(GameBoy::new(good.clone()).is_ok());

    let err = GameBoy::new(good[..0x100].to_vec()).err().unwrap();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(GameBoy::new(Vec::new()).is_err());

    let mut size = good.clone();
    size[0x148] = 0x20;
    let err = GameBoy::new(size).err().unwrap();
    assert!(
        matches!(err, Error::BadHeader { offset: 0x148, .. }),
        "{err}"
    );

    let err = GameBoy::new(test_rom(0x22, 0, b"MBC7")).err().unwrap();
    assert!(
        matches!(err, Error::UnsupportedCartridgeType { code: 0x22, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("0x0147"));

    let mut checksum = good.clone();
    checksum[0x14D] ^= 1;
    let err = GameBoy::new(checksum).err().unwrap();
    assert!(matches!(err, Error::HeaderChecksum { .. }), "{err}");

    let mut declared = test_rom(0x01, 0, b"BIGGER");
    declared[0x148] = 2; // 128 KiB declared, 32 KiB present
    let sum = declared[0x134..=0x14C]
        .iter()
        .fold(0u8, |x, &b| x.wrapping_sub(b).wrapping_sub(1));
    declared[0x14D] = sum;
    let err = GameBoy::new(declared).err().unwrap();
    assert!(
        matches!(
            err,
            Error::Truncated {
                needed: 0x20000,
                ..
            }
        ),
        "{err}"
    );

    let err = GameBoy::with_boot_rom(good, vec![0; 10]).err().unwrap();
    assert_eq!(err, Error::BootRomSize { len: 10 });
}

#[test]
fn random_roms_never_panic() {
    let mut x = 0x0BAD_5EEDu64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..300 {
        let mut data = rom();
        for _ in 0..64 {
            let i = 0x100 + (next() as usize) % 0x60;
            data[i] = next() as u8;
        }
        if let Ok(mut gb) = GameBoy::new(data) {
            gb.run_frames(2, true);
        }
    }
}

#[test]
fn battery_ram_round_trips() {
    let mut gb = GameBoy::new(test_rom(0x03, 2, b"BATTERY")).unwrap();
    let ram = gb.battery_ram().expect("MBC1+RAM+BATTERY has battery RAM");
    assert_eq!(ram.len(), 0x2000);
    let data: Vec<u8> = (0..0x2000u32).map(|i| (i * 7) as u8).collect();
    gb.load_battery_ram(&data).unwrap();
    assert_eq!(gb.battery_ram().unwrap(), &data[..]);
    assert_eq!(
        gb.load_battery_ram(&data[..100]),
        Err(Error::RamSize {
            expected: 0x2000,
            got: 100
        })
    );
    assert!(GameBoy::new(rom()).unwrap().battery_ram().is_none());
}

#[test]
fn header_and_identity() {
    let gb = GameBoy::new(test_rom(0x13, 3, b"IDENTITY")).unwrap();
    let h = gb.header();
    assert_eq!(h.title, "IDENTITY");
    assert_eq!(h.cartridge_type, 0x13);
    assert_eq!(h.cartridge_type_name(), "MBC3+RAM+BATTERY");
    assert_eq!(h.ram_size, 0x8000);
    assert!(h.header_checksum_ok());
    assert_eq!(gb.rom_sha1().len(), 20);
    assert!(gameboy::VERSION.starts_with("gameboy-"));
}

#[test]
fn button_names() {
    assert_eq!(Buttons::from_name("start"), Some(Buttons::START));
    assert_eq!(Buttons::from_name("Nope"), None);
    assert_eq!((Buttons::A | Buttons::UP).to_string(), "A+UP");
    assert_eq!(Buttons::NONE.to_string(), "-");
}

#[test]
fn user_boot_rom_runs_then_unmaps() {
    // A tiny boot ROM: LCD on, SP set, A=1, jump to its last bytes, which write FF50 and
    // fall through to 0x0100.
    let mut boot = vec![0u8; 0x100];
    let code = [
        0x31, 0xFE, 0xFF, // ld sp,FFFE
        0x3E, 0x91, 0xE0, 0x40, // ld a,91; ldh (LCDC),a
        0x3E, 0x01, // ld a,01
        0xC3, 0xFE, 0x00, // jp 00FE
    ];
    boot[..code.len()].copy_from_slice(&code);
    boot[0xFE..].copy_from_slice(&[0xE0, 0x50]); // ldh (FF50),a
    let cart = rom();
    let mut gb = GameBoy::with_boot_rom(cart.clone(), boot.clone()).unwrap();
    assert_eq!(gb.registers().pc, 0);
    assert_eq!(gb.peek(0x0000), 0x31, "boot ROM mapped at power-on");
    for _ in 0..20 {
        gb.step();
    }
    assert!(
        gb.registers().pc >= 0x100,
        "reached the cartridge: {}",
        gb.registers()
    );
    assert_eq!(gb.peek(0x0000), cart[0], "boot ROM unmapped after FF50");
    gb.run_frames(30, false);
    assert!(
        gb.peek(0xD000) > 0,
        "the cartridge program runs (VBlank count)"
    );
    // States taken with or after the boot ROM round-trip.
    let s = gb.save_state();
    gb.load_state(&s).unwrap();
    assert_eq!(gb.save_state(), s);
    // A state saved while the boot ROM is mapped does not load into a machine without one.
    let early = GameBoy::with_boot_rom(cart.clone(), boot)
        .unwrap()
        .save_state();
    let mut plain = GameBoy::new(cart).unwrap();
    assert!(matches!(
        plain.load_state(&early),
        Err(StateError::Invalid(_))
    ));
}

#[test]
fn observation_is_the_2x2_mean_of_the_greys() {
    // mini-zelda's first room (after the title fade) uses several shades.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../cartridges/mini-zelda/mini-zelda.gb"
    );
    let mut gb = GameBoy::new(std::fs::read(path).expect("mini-zelda.gb")).unwrap();
    gb.run_frames(400, true);
    let shades: std::collections::BTreeSet<u8> = gb.frame().iter().copied().collect();
    assert!(shades.len() >= 3, "test picture too plain: {shades:?}");
    let mut obs = [0u8; gameboy::OBS_HEIGHT * gameboy::OBS_WIDTH];
    gb.observation(&mut obs);
    let grey = |s: u8| [0xFFu16, 0xAA, 0x55, 0x00][s as usize];
    let f = gb.frame();
    for y in 0..gameboy::OBS_HEIGHT {
        for x in 0..gameboy::OBS_WIDTH {
            let p = |dy: usize, dx: usize| grey(f[(2 * y + dy) * 160 + 2 * x + dx]);
            let mean = (p(0, 0) + p(0, 1) + p(1, 0) + p(1, 1)) / 4;
            assert_eq!(obs[y * gameboy::OBS_WIDTH + x] as u16, mean, "at {x},{y}");
        }
    }
}

/// A format-1 state (before the sound timing was added) still loads: the sound counters
/// start idle and everything else is restored.
#[test]
fn format_1_states_still_load() {
    let mut gb = GameBoy::new(rom()).unwrap();
    gb.run_frames(20, false);
    let v2 = gb.save_state();
    assert_eq!(gameboy::STATE_VERSION, 2);
    // Format 2 appends 21 bytes of sound timing to a DMG payload; drop them.
    let mut v1 = v2[..v2.len() - 21].to_vec();
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let len = v1.len() as u32;
    v1[12..16].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&v1[40..]);
    v1[36..40].copy_from_slice(&crc.to_le_bytes());
    let mut other = GameBoy::new(rom()).unwrap();
    other.load_state(&v1).unwrap();
    assert_eq!(other.registers(), gb.registers());
    assert_eq!(other.cycles(), gb.cycles());
    other.run_frames(10, false);
    gb.run_frames(10, false);
    assert_eq!(other.peek(0xD000), gb.peek(0xD000));
    // Version 0 and versions after this build's are refused by number.
    for bad in [0u32, 3] {
        let mut s = v2.clone();
        s[8..12].copy_from_slice(&bad.to_le_bytes());
        let err = other.load_state(&s).unwrap_err();
        assert!(
            matches!(err, StateError::Version { found, .. } if found == bad),
            "{err}"
        );
    }
}

/// A state saved long after the cartridge last touched a sound register (the sound timing
/// is caught up lazily, so its sync time is old) loads and continues exactly.
#[test]
fn states_long_after_the_last_sound_access_load() {
    let mut gb = GameBoy::new(rom()).unwrap();
    gb.run_frames(3000, false);
    let state = gb.save_state();
    let mut other = GameBoy::new(rom()).unwrap();
    other.load_state(&state).unwrap();
    gb.run_frames(5, false);
    other.run_frames(5, false);
    assert!(gb.save_state() == other.save_state());
    assert_eq!(other.peek(0xFF26) & 0x80, 0x80, "sound still powered");
}
