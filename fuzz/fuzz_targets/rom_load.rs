//! Header parsing and cartridge loading (`zelda-rl rom info`, `GameBoy::new`) on arbitrary
//! bytes: must return an error or a machine, never panic. The input is also turned into a
//! loadable cartridge (padded to the size its header declares, up to 256 KiB, header
//! checksum repaired) that runs a few frames, so random code drives the CPU, the MBCs
//! and the peripherals.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gameboy::Header::parse(data);
    let _ = gameboy::GameBoy::new(data.to_vec());

    if data.len() < 0x150 {
        return;
    }
    let mut rom = data.to_vec();
    rom[0x148] %= 4; // 32..256 KiB
    let size = 0x8000usize << rom[0x148];
    rom.resize(size, 0xFF);
    let sum = rom[0x134..=0x14C]
        .iter()
        .fold(0u8, |x, &b| x.wrapping_sub(b).wrapping_sub(1));
    rom[0x14D] = sum;
    if let Ok(mut gb) = gameboy::GameBoy::new(rom) {
        gb.set_buttons(gameboy::Buttons(data[0x150]));
        gb.run_frames(3, true);
        let state = gb.save_state();
        gb.load_state(&state).expect("own state loads");
        let _ = gb.battery_ram();
    }
});
