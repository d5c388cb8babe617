//! The segment reader on arbitrary bytes: an error naming the object, never a panic, and
//! whatever decodes re-encodes to a segment that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = episodes::Segment::decode(data, "fuzz.seg") {
        let again = seg.encode().expect("a decoded segment encodes");
        let back = episodes::Segment::decode(&again, "fuzz.seg").expect("re-encoded segment decodes");
        assert_eq!(back.meta, seg.meta);
        assert_eq!(back.actions, seg.actions);
    }
});
