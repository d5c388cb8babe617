//! Builds JSON instances from a JSON schema: valid ones (what a guided-decoding server
//! returns) and deliberately invalid ones (the `SchemaViolation` fault).
//!
//! Covers the subset structured-output schemas use: `type` (object, array, string,
//! integer, number, boolean, null), `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `minimum`/`maximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `anyOf`/`oneOf` (first branch).

use serde_json::{Map, Value, json};

/// A small deterministic generator, so the same request gets the same reply.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A value that satisfies `schema`, chosen deterministically from `seed`.
pub fn generate(schema: &Value, seed: u64) -> Value {
    gen_value(schema, &mut Rng(seed))
}

/// A value that does not satisfy `schema`: a valid instance with one required property
/// removed, an out-of-range number, or a value of the wrong type.
pub fn violate(schema: &Value, seed: u64) -> Value {
    let mut rng = Rng(seed);
    let valid = gen_value(schema, &mut rng);
    if let Value::Object(mut map) = valid {
        if let Some(req) = schema.get("required").and_then(Value::as_array)
            && let Some(name) = req.first().and_then(Value::as_str)
        {
            map.remove(name);
            return Value::Object(map);
        }
        map.insert("unexpected_field".into(), json!(true));
        return Value::Object(map);
    }
    match type_of(schema) {
        Some("integer" | "number") => match schema.get("maximum").and_then(Value::as_i64) {
            Some(max) => json!(max + 1),
            None => json!("not a number"),
        },
        Some("string") => json!(12345),
        _ => json!({"unexpected": true}),
    }
}

fn type_of(schema: &Value) -> Option<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn gen_value(schema: &Value, rng: &mut Rng) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.is_empty()
    {
        let i = rng.below(options.len() as u64) as usize;
        return options[i].clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return gen_value(first, rng);
        }
    }
    match type_of(schema) {
        Some("object") => {
            let mut out = Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    out.insert(name.clone(), gen_value(sub, rng));
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            let max = schema
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(min.max(3));
            let n = min.max(1).min(max);
            let items = schema
                .get("items")
                .cloned()
                .unwrap_or(json!({"type": "string"}));
            Value::Array((0..n).map(|_| gen_value(&items, rng)).collect())
        }
        Some("string") => {
            let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
            let max = schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .map(|m| m as usize)
                .unwrap_or(usize::MAX);
            let mut s = format!("test reply {}", rng.below(1000));
            s.truncate(max);
            while s.len() < min {
                s.push('x');
            }
            Value::String(s)
        }
        Some("integer") => {
            let lo = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_i64)
                .unwrap_or(lo + 100);
            let span = u64::try_from(hi - lo).unwrap_or(0) + 1;
            json!(lo + rng.below(span) as i64)
        }
        Some("number") => {
            let lo = schema.get("minimum").and_then(Value::as_f64).unwrap_or(0.0);
            let hi = schema
                .get("maximum")
                .and_then(Value::as_f64)
                .unwrap_or(lo + 1.0);
            let t = rng.below(1001) as f64 / 1000.0;
            json!(lo + (hi - lo) * t)
        }
        Some("boolean") => json!(rng.below(2) == 1),
        Some("null") => Value::Null,
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 0, "maximum": 10},
                "summary": {"type": "string", "maxLength": 5},
                "steps": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4},
                "pick": {"type": "string", "enum": ["a", "b"]},
                "ok": {"type": "boolean"}
            },
            "required": ["score", "summary", "steps", "pick", "ok"],
            "additionalProperties": false
        })
    }

    #[test]
    fn generated_values_respect_the_schema() {
        for seed in 0..200 {
            let v = generate(&schema(), seed);
            let score = v["score"].as_i64().unwrap();
            assert!((0..=10).contains(&score), "{v}");
            assert!(v["summary"].as_str().unwrap().len() <= 5, "{v}");
            assert_eq!(v["steps"].as_array().unwrap().len(), 2, "{v}");
            assert!(["a", "b"].contains(&v["pick"].as_str().unwrap()), "{v}");
            assert!(v["ok"].is_boolean(), "{v}");
        }
        assert_eq!(generate(&schema(), 7), generate(&schema(), 7));
    }

    #[test]
    fn violations_drop_a_required_field() {
        let v = violate(&schema(), 3);
        assert!(v.get("score").is_none(), "{v}");
        assert_eq!(
            violate(&json!({"type": "integer", "maximum": 10}), 1),
            json!(11)
        );
    }
}
