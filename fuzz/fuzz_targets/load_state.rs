//! `load_state` on arbitrary bytes: an error or success, never a panic; after a rejected
//! state the machine is unchanged, after an accepted one it keeps running. Each input is
//! tried raw and spliced into a real state with its CRC repaired, so the payload parser
//! sees adversarial data behind valid header checks. Every input is tried on a DMG and on
//! a CGB, with the cartridge flagged for colour (CGB mode) and without (DMG compatibility
//! mode).
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;

/// A small valid ROM (ROM only): a loop over work RAM with VBlank interrupts; `cgb` sets
/// the header's CGB flag.
fn rom(cgb: bool) -> Vec<u8> {
    let mut rom = vec![0u8; 0x8000];
    rom[0x40..0x47].copy_from_slice(&[0xE5, 0x21, 0x00, 0xD0, 0x34, 0xE1, 0xD9]);
    rom[0x100..0x104].copy_from_slice(&[0x00, 0xC3, 0x50, 0x01]);
    let main = [
        0x31, 0xFE, 0xFF, 0x3E, 0x01, 0xE0, 0xFF, 0xFB, 0x21, 0x00, 0xC0, 0x7E, 0x3C, 0x22, 0x7C,
        0xFE, 0xC2, 0x20, 0xF8, 0x76, 0x18, 0xF2,
    ];
    rom[0x150..0x150 + main.len()].copy_from_slice(&main);
    rom[0x134..0x13C].copy_from_slice(b"FUZZSTAT");
    if cgb {
        rom[0x143] = 0x80;
    }
    let sum = rom[0x134..=0x14C]
        .iter()
        .fold(0u8, |x, &b| x.wrapping_sub(b).wrapping_sub(1));
    rom[0x14D] = sum;
    rom
}

struct Fixture {
    gb: gameboy::GameBoy,
    before: Vec<u8>,
}

fn fixture(model: gameboy::Model, cgb_flag: bool) -> Fixture {
    let mut gb = gameboy::GameBoy::with_model(rom(cgb_flag), model).unwrap();
    gb.run_frames(10, true);
    let before = gb.save_state();
    Fixture { gb, before }
}

thread_local! {
    static FIXTURES: RefCell<[Fixture; 3]> = RefCell::new([
        fixture(gameboy::Model::Dmg, false),
        fixture(gameboy::Model::Cgb, true),
        fixture(gameboy::Model::Cgb, false),
    ]);
}

fuzz_target!(|data: &[u8]| {
    FIXTURES.with_borrow_mut(|fixtures| {
        for f in fixtures.iter_mut() {
            let mut spliced = f.before.clone();
            let payload = spliced.len() - 40;
            let n = data.len().min(payload);
            let at = if data.is_empty() {
                40
            } else {
                40 + (data[0] as usize * 257 + data.get(1).copied().unwrap_or(0) as usize)
                    % (payload - n + 1)
            };
            spliced[at..at + n].copy_from_slice(&data[..n]);
            let crc = crc32fast::hash(&spliced[40..]);
            spliced[36..40].copy_from_slice(&crc.to_le_bytes());
            for input in [data, &spliced[..]] {
                match f.gb.load_state(input) {
                    Ok(()) => f.gb.run_frames(2, true),
                    Err(_) => assert_eq!(
                        f.gb.save_state(),
                        f.before,
                        "rejected state changed the machine"
                    ),
                }
                f.gb.load_state(&f.before).expect("restore");
            }
        }
    });
});
