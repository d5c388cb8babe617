//! Which segments compare mode pairs up.
//!
//! Segments with the same index from different (worker, env) streams are paired: they were
//! recorded at the same point of training, so the pair contrasts two trajectories of a
//! similar policy rather than an early and a late one. Within an index the streams are
//! shuffled with the seed, which also decides which segment is shown first (judges have a
//! position bias). The pairing of a given set of segments never changes, so a resumed run
//! finds the pairs it already judged.

use std::collections::BTreeMap;

/// Where a segment key sits: its stream (`WWW-EEE`) and index, when the key has the
/// `<run>/segments/<worker>-<env>/<index>.seg` form.
pub fn stream_and_index(key: &str) -> Option<(String, u64)> {
    let stem = key.strip_suffix(".seg")?;
    let mut parts = stem.rsplitn(3, '/');
    let index = parts.next()?.parse().ok()?;
    let stream = parts.next()?;
    let (w, e) = stream.split_once('-')?;
    w.parse::<u32>().ok()?;
    e.parse::<u32>().ok()?;
    Some((stream.to_string(), index))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pairs `keys`; returns the pairs (first, second) and the keys left without a partner.
pub fn pairs(keys: &[String], seed: u64) -> (Vec<(String, String)>, Vec<String>) {
    let mut groups: BTreeMap<Option<u64>, Vec<String>> = BTreeMap::new();
    for k in keys {
        groups
            .entry(stream_and_index(k).map(|(_, i)| i))
            .or_default()
            .push(k.clone());
    }
    let mut out = Vec::new();
    let mut unpaired = Vec::new();
    for (index, mut group) in groups {
        group.sort();
        // Fisher-Yates with a generator seeded by the run seed and the index.
        let mut state = seed ^ splitmix(index.unwrap_or(u64::MAX));
        for i in (1..group.len()).rev() {
            state = splitmix(state);
            let j = (state % (i as u64 + 1)) as usize;
            group.swap(i, j);
        }
        let mut it = group.chunks_exact(2);
        for pair in it.by_ref() {
            out.push((pair[0].clone(), pair[1].clone()));
        }
        unpaired.extend(it.remainder().iter().cloned());
    }
    (out, unpaired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(w: u32, e: u32, i: u64) -> String {
        format!("run/segments/{w:03}-{e:03}/{i:08}.seg")
    }

    #[test]
    fn parses_segment_keys() {
        assert_eq!(stream_and_index(&key(1, 2, 3)), Some(("001-002".into(), 3)));
        assert_eq!(stream_and_index("run/segments/x/00000001.seg"), None);
        assert_eq!(stream_and_index("run/segments/001-002/00000001.json"), None);
    }

    #[test]
    fn pairs_same_index_across_streams_deterministically() {
        let mut keys = Vec::new();
        for w in 0..2 {
            for e in 0..3 {
                for i in 0..4 {
                    keys.push(key(w, e, i));
                }
            }
        }
        let (p, rest) = pairs(&keys, 7);
        assert_eq!(p.len(), 12);
        assert!(rest.is_empty());
        for (a, b) in &p {
            assert_eq!(
                stream_and_index(a).unwrap().1,
                stream_and_index(b).unwrap().1,
                "{a} {b}"
            );
            assert_ne!(a, b);
        }
        let mut shuffled = keys.clone();
        shuffled.reverse();
        assert_eq!(pairs(&shuffled, 7).0, p, "input order does not matter");
        assert_ne!(pairs(&keys, 8).0, p, "the seed does");
        let mut seen: Vec<&String> = p.iter().flat_map(|(a, b)| [a, b]).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 24, "every segment is in exactly one pair");
    }

    #[test]
    fn odd_groups_leave_one_out() {
        let keys = vec![key(0, 0, 0), key(0, 1, 0), key(0, 2, 0), key(0, 0, 1)];
        let (p, rest) = pairs(&keys, 1);
        assert_eq!(p.len(), 1);
        assert_eq!(rest.len(), 2);
    }
}
