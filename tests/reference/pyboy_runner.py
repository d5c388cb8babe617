#!/usr/bin/env python3
"""Run a Game Boy ROM in PyBoy (headless, sound off) with a scripted input file.

This is the reference harness: it plays the input scripts under `tests/reference/scripts/`
(format in /work/notes/contracts.md: `<frame> <buttons>` per line) and dumps RAM and
screenshots in the same form the project's Rust emulator produces, so the two can later be
compared byte for byte.

Boot: PyBoy 2.8.1 *always* executes a boot ROM. With `bootrom=None` it runs its own
256-byte DMG boot ROM (`pyboy/core/bootrom_dmg.bin`, a logo animation) for about 70
frames before the cartridge's entry point at 0x0100 runs. Our emulator starts in the
post-boot state instead, so the default here (`boot="post"`) hands PyBoy a tiny boot ROM
(`POST_BOOT_ROM` below) that only sets the DMG post-boot CPU registers (A=01 F=B0 BC=0013
DE=00D8 HL=014D SP=FFFE), LCDC=0x91 and BGP=0xFC, and unmaps itself, reaching 0x0100 after
about 60 CPU cycles. PyBoy reports a (tiny) frame the moment the LCD is switched on, so
the runner ticks that one away before frame 0 of the script; frame 0 then starts with the
PPU at LY 0, as in a post-boot emulator. `boot="pyboy"` keeps PyBoy's own boot ROM.

Frame boundaries: PyBoy's `tick()` returns when LY wraps from 153 to 0 (the end of
VBlank), while our contract ends a frame when LY becomes 144 (the start of VBlank). The
mini-zelda cartridge polls the joypad and runs its game logic inside lines 0-143, so an
input script drives both emulators identically; a RAM dump taken here after frame N shows
the game state after the logic of frame N plus whatever the cartridge did in that frame's
VBlank (mini-zelda only writes VRAM/OAM and its VBlank flag there).

Screenshots use the four greys 0xFF, 0xAA, 0x55, 0x00 for shades 0..3 (the palette is
set on PyBoy itself, so every pixel maps back to its shade exactly).

CLI:
    python tests/reference/pyboy_runner.py --rom ROM [--input SCRIPT] --frames N \
        [--dump-ram OUT] [--screenshot OUT.png] [--boot post|pyboy] [--watch K]
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("PYSDL2_DLL_PATH", "")  # never look for a display library
import logging  # noqa: E402

logging.getLogger("pyboy").setLevel(logging.ERROR)

from pyboy import PyBoy  # noqa: E402

#: Button names of the input script format, in bit order of the `Buttons` bitset.
BUTTONS = ("A", "B", "SELECT", "START", "RIGHT", "LEFT", "UP", "DOWN")
#: Greys for shades 0..3 (0 = lightest).
GREYS = (0xFF, 0xAA, 0x55, 0x00)
#: Address ranges of a RAM dump: WRAM then HRAM (FFFF, IE, is not included).
RAM_RANGES = ((0xC000, 0xE000), (0xFF80, 0xFFFF))
RAM_DUMP_SIZE = sum(end - start for start, end in RAM_RANGES)


def _post_boot_rom() -> bytes:
    """A 256-byte boot ROM that leaves the DMG post-boot register state and jumps to 0x100."""
    code = bytes(
        [
            0x31, 0xFE, 0xFF,  # ld sp, $FFFE
            0x3E, 0xFC, 0xE0, 0x47,  # ld a, $FC ; ldh [BGP], a
            0x3E, 0x91, 0xE0, 0x40,  # ld a, $91 ; ldh [LCDC], a  (LCD on, BG on, tiles $8000)
            0x01, 0xB0, 0x01, 0xC5, 0xF1,  # ld bc, $01B0 ; push bc ; pop af  -> A=01 F=B0
            0x01, 0x13, 0x00,  # ld bc, $0013
            0x11, 0xD8, 0x00,  # ld de, $00D8
            0x21, 0x4D, 0x01,  # ld hl, $014D
            0xC3, 0xFE, 0x00,  # jp $00FE
        ]
    )
    rom = bytearray(code) + bytearray(0x100 - len(code))
    rom[0xFE:0x100] = bytes([0xE0, 0x50])  # ldh [$FF50], a (A=1): unmap, PC -> $0100
    return bytes(rom)


POST_BOOT_ROM = _post_boot_rom()


class ScriptError(ValueError):
    """A malformed input script; the message names the file and line."""


@dataclass(frozen=True)
class InputScript:
    """Parsed input script: (frame, button mask) entries with strictly increasing frames."""

    entries: tuple[tuple[int, int], ...]
    source: str = "<memory>"

    def buttons_at(self, frame: int) -> int:
        """Button mask held during `frame` (bit i = BUTTONS[i])."""
        mask = 0
        for f, m in self.entries:
            if f > frame:
                break
            mask = m
        return mask

    def last_frame(self) -> int:
        """Frame of the last entry (0 for an empty script)."""
        return self.entries[-1][0] if self.entries else 0


def parse_buttons(text: str) -> int:
    """`-` or names joined with `+` (case-insensitive) -> bit mask."""
    text = text.strip()
    if text == "-":
        return 0
    mask = 0
    for name in text.split("+"):
        name = name.strip().upper()
        if name not in BUTTONS:
            raise ValueError(f"unknown button {name!r} (expected - or {', '.join(BUTTONS)} joined by +)")
        mask |= 1 << BUTTONS.index(name)
    return mask


def format_buttons(mask: int) -> str:
    """Bit mask -> script notation (`-` or `A+RIGHT`)."""
    names = [b for i, b in enumerate(BUTTONS) if mask & (1 << i)]
    return "+".join(names) if names else "-"


def parse_script(text: str, source: str = "<memory>") -> InputScript:
    """Parse the script format of /work/notes/contracts.md; errors name `source` and line."""
    entries: list[tuple[int, int]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ScriptError(f"{source}:{lineno}: expected `<frame> <buttons>`, got {raw.strip()!r}")
        try:
            frame = int(parts[0], 10)
        except ValueError:
            raise ScriptError(f"{source}:{lineno}: frame {parts[0]!r} is not a decimal number") from None
        if frame < 0:
            raise ScriptError(f"{source}:{lineno}: frame {frame} is negative")
        if entries and frame <= entries[-1][0]:
            raise ScriptError(
                f"{source}:{lineno}: frame {frame} does not follow frame {entries[-1][0]} (frames must strictly increase)"
            )
        try:
            mask = parse_buttons(parts[1])
        except ValueError as e:
            raise ScriptError(f"{source}:{lineno}: {e}") from None
        entries.append((frame, mask))
    return InputScript(tuple(entries), source)


def load_script(path: str | os.PathLike) -> InputScript:
    """Read and parse an input script file."""
    path = Path(path)
    return parse_script(path.read_text(), str(path))


def png_bytes(grey: bytes, width: int = 160, height: int = 144) -> bytes:
    """An 8-bit greyscale PNG of `grey` (row-major, one byte per pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + grey[y * width : (y + 1) * width] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temporary file in the same folder, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class Runner:
    """One PyBoy instance playing a ROM frame by frame under an input script."""

    def __init__(self, rom: str | os.PathLike, boot: str = "post"):
        rom = Path(rom)
        if not rom.is_file():
            raise FileNotFoundError(f"ROM not found: {rom}")
        self._bootfile = None
        bootrom = None
        if boot == "post":
            fd, name = tempfile.mkstemp(prefix="postboot-", suffix=".bin")
            with os.fdopen(fd, "wb") as f:
                f.write(POST_BOOT_ROM)
            self._bootfile = name
            bootrom = name
        elif boot != "pyboy":
            raise ValueError(f"boot must be 'post' or 'pyboy', not {boot!r}")
        try:
            self.pyboy = PyBoy(
                str(rom),
                window="null",
                sound_emulated=False,
                bootrom=bootrom,
                color_palette=(0xFFFFFF, 0xAAAAAA, 0x555555, 0x000000),
                cgb=False,
                log_level="ERROR",
            )
        except BaseException:
            if self._bootfile:
                os.unlink(self._bootfile)
            raise
        if boot == "post":
            # PyBoy ends a "frame" the moment the LCD is switched on: absorb that one.
            self.pyboy.tick(1, False, False)
        self.frame = 0
        self._held = 0

    def close(self) -> None:
        """Stop PyBoy and remove the temporary boot ROM."""
        self.pyboy.stop(save=False)
        if self._bootfile:
            os.unlink(self._bootfile)
            self._bootfile = None

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def set_buttons(self, mask: int) -> None:
        """Hold exactly the buttons in `mask` from the next frame on."""
        for i, name in enumerate(BUTTONS):
            bit = 1 << i
            if mask & bit and not self._held & bit:
                self.pyboy.button_press(name.lower())
            elif self._held & bit and not mask & bit:
                self.pyboy.button_release(name.lower())
        self._held = mask

    def step(self, render: bool = False) -> None:
        """Run one frame."""
        self.pyboy.tick(1, render, False)
        self.frame += 1

    def run(
        self,
        frames: int,
        script: InputScript | None = None,
        render_last: bool = True,
        on_frame=None,
        render_every: int = 0,
    ) -> None:
        """Run `frames` frames, applying `script` (frame indices relative to this runner's frame 0).

        Renders the last frame (`render_last`) and every frame whose number after it ran is a
        multiple of `render_every`; `on_frame(runner)` is called after each frame."""
        entries = list(script.entries) if script else []
        i = 0
        # Entries before the current frame still decide what is held now.
        while i < len(entries) and entries[i][0] <= self.frame:
            i += 1
        if script and i:
            self.set_buttons(entries[i - 1][1])
        for n in range(frames):
            if i < len(entries) and entries[i][0] == self.frame:
                self.set_buttons(entries[i][1])
                i += 1
            render = (render_last and n == frames - 1) or (render_every and (self.frame + 1) % render_every == 0)
            self.step(render=bool(render))
            if on_frame:
                on_frame(self)

    def peek(self, addr: int) -> int:
        """One byte of the CPU address space."""
        return self.pyboy.memory[addr]

    def peek16(self, addr: int) -> int:
        """Little-endian 16-bit value at `addr`."""
        return self.pyboy.memory[addr] | self.pyboy.memory[addr + 1] << 8

    def ram(self) -> bytes:
        """WRAM C000-DFFF then HRAM FF80-FFFE (8319 bytes)."""
        out = bytearray()
        for start, end in RAM_RANGES:
            out += bytes(self.pyboy.memory[start:end])
        return bytes(out)

    def shades(self) -> bytes:
        """The last rendered frame as 160*144 shade indices 0..3 (0 = lightest)."""
        red = self.pyboy.screen.ndarray[:, :, 0].tobytes()
        lookup = {g: s for s, g in enumerate(GREYS)}
        try:
            return bytes(lookup[v] for v in red)
        except KeyError as e:
            raise RuntimeError(f"unexpected grey {e.args[0]:#04x} in PyBoy's frame") from None

    def greys(self) -> bytes:
        """The last rendered frame as 160*144 grey bytes (0xFF, 0xAA, 0x55, 0x00)."""
        return bytes(GREYS[s] for s in self.shades())

    def screenshot(self, path: str | os.PathLike) -> None:
        """Write the last rendered frame as an 8-bit greyscale PNG."""
        write_atomic(path, png_bytes(self.greys()))

    def save_state(self) -> bytes:
        """PyBoy's own state blob (only for use with this harness)."""
        import io

        buf = io.BytesIO()
        self.pyboy.save_state(buf)
        return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rom", required=True, help="cartridge file (.gb)")
    ap.add_argument("--input", help="input script (`<frame> <buttons>` lines)")
    ap.add_argument("--frames", type=int, help="frames to run (default: last script frame + 1)")
    ap.add_argument("--dump-ram", help="write C000-DFFF + FF80-FFFE (8319 bytes) here")
    ap.add_argument("--screenshot", help="write the last frame as a greyscale PNG here")
    ap.add_argument("--boot", choices=("post", "pyboy"), default="post", help="post-boot state (default) or PyBoy's boot ROM")
    ap.add_argument("--watch", type=int, default=0, metavar="K", help="print mini-zelda state every K frames")
    ap.add_argument("--shots", metavar="DIR", help="with --watch: also write a PNG every K frames into DIR")
    args = ap.parse_args(argv)

    try:
        script = load_script(args.input) if args.input else None
    except (OSError, ScriptError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    frames = args.frames if args.frames is not None else (script.last_frame() + 1 if script else 0)
    if frames <= 0:
        print("error: --frames must be positive (or give an --input script)", file=sys.stderr)
        return 2

    def watch(r: Runner) -> None:
        if r.frame % args.watch == 0:
            print(describe_zelda(r))
            if args.shots:
                r.screenshot(os.path.join(args.shots, f"f{r.frame:06d}.png"))

    if args.shots:
        if not args.watch:
            print("error: --shots needs --watch K", file=sys.stderr)
            return 2
        os.makedirs(args.shots, exist_ok=True)
    try:
        runner = Runner(args.rom, boot=args.boot)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with runner as r:
        r.run(
            frames,
            script,
            render_last=True,
            on_frame=watch if args.watch else None,
            render_every=args.watch if args.shots else 0,
        )
        if args.dump_ram:
            write_atomic(args.dump_ram, r.ram())
        if args.screenshot:
            r.screenshot(args.screenshot)
    return 0


def describe_zelda(r: Runner) -> str:
    """One line of mini-zelda's Link's Awakening state bytes (for --watch)."""
    p = r.peek
    return (
        f"f={r.frame:6d} mode={p(0xDB95):02X} room={p(0xFFF6):02X} map={p(0xFFF7):02X} in={p(0xDBA5)} "
        f"x={p(0xFF98):3d} y={p(0xFF99):3d} dir={p(0xFF9E)} hp={p(0xDB5A):2d}/{p(0xDB5B) * 8} "
        f"rup={p(0xDB5D):X}{p(0xDB5E):02X} keys={p(0xDBD0)} dlg={p(0xC19F):02X} mot={p(0xC11C):02X} "
        f"inst={p(0xDB65):02X} deaths={r.peek16(0xDB57)} fc={p(0xFFE7):3d}"
    )


if __name__ == "__main__":
    sys.exit(main())
