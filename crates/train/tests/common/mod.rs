//! Helpers shared by the training integration tests.

use episodes::Store;

/// Every object in the store with its bytes, sorted by key.
pub async fn contents(store: &Store) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for o in store.list("").await.unwrap() {
        // TensorBoard files and run.json carry no wall-clock data from the loop itself,
        // but the checkpoint history differs by design (the stopped run wrote one more).
        if o.key.contains("/checkpoints/") {
            continue;
        }
        let mut bytes = store.get(&o.key).await.unwrap().to_vec();
        if o.key.contains("/scores/") {
            bytes = without_latency(&bytes);
        }
        out.push((o.key.clone(), bytes));
    }
    out.sort();
    out
}

/// Score lines with the measured judge latencies taken out (wall-clock by nature).
fn without_latency(jsonl: &[u8]) -> Vec<u8> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("latency_s");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for line in jsonl.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut v: serde_json::Value = serde_json::from_slice(line).unwrap();
        strip(&mut v);
        out.extend(serde_json::to_vec(&v).unwrap());
        out.push(b'\n');
    }
    out
}
