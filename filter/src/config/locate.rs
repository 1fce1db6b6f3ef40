//! The JSON path of the value at an error's position.
//!
//! serde_json reports where an error was found (line and column), not which
//! field it was in. This walks the document up to that position and names
//! the path, so a refusal reads `client_ip.trusted_hops: ...` and not
//! `... at line 1 column 52`. It replaces `serde_path_to_error`, whose
//! per-type wrappers made up a fifth of the `.wasm`.
//!
//! The walk only runs on documents serde_json already found fault with, and
//! only up to the fault, so it needs to understand just enough JSON to
//! follow nesting: strings (with escapes), objects, arrays and commas.

/// One open container on the way to the error.
enum Frame {
    /// An object, with the key of the member being read (once seen).
    Object {
        key: Option<String>,
        expect_key: bool,
    },
    /// An array, with the index of the element being read.
    Array { index: usize },
}

/// The path of the value being read at `line` and `column` (1-based, as
/// serde_json counts them), e.g. `rate_limits[1].limit`; empty at the root.
pub fn path_at(json: &[u8], line: usize, column: usize) -> String {
    let end = offset(json, line, column);
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        let Some(&byte) = json.get(i) else { break };
        match byte {
            b'"' => {
                let (text, next) = string(json, i + 1);
                if let Some(Frame::Object { key, expect_key }) = frames.last_mut() {
                    if *expect_key {
                        *key = Some(text);
                        *expect_key = false;
                    }
                }
                i = next;
                continue;
            }
            b'{' => frames.push(Frame::Object {
                key: None,
                expect_key: true,
            }),
            b'[' => frames.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                frames.pop();
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    render(&frames)
}

/// The byte offset just past `line`:`column`, clamped to the document.
fn offset(json: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line {
        match json.iter().skip(start).position(|&b| b == b'\n') {
            Some(newline) => start += newline + 1,
            None => return json.len(),
        }
    }
    (start + column).min(json.len())
}

/// Reads a string body starting after its opening quote: the text (escapes
/// kept as written, which is enough for a path) and the offset after the
/// closing quote.
fn string(json: &[u8], mut i: usize) -> (String, usize) {
    let start = i;
    while let Some(&byte) = json.get(i) {
        match byte {
            b'\\' => i += 2,
            b'"' => {
                let text = json.get(start..i).unwrap_or_default();
                return (String::from_utf8_lossy(text).into_owned(), i + 1);
            }
            _ => i += 1,
        }
    }
    (
        String::from_utf8_lossy(json.get(start..).unwrap_or_default()).into_owned(),
        i,
    )
}

fn render(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path serde_json's error position leads to.
    fn path_of_error<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        let err = serde_json::from_str::<T>(json).unwrap_err();
        path_at(json.as_bytes(), err.line(), err.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        name: String,
        limit: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        rules: Vec<Rule>,
        other: Option<u32>,
    }

    #[test]
    fn names_the_field_with_a_wrong_type() {
        let json = r#"{"rules": [{"name": "a", "limit": 1}, {"name": "b", "limit": -4}]}"#;
        assert_eq!(path_of_error::<Doc>(json), "rules[1].limit");
    }

    #[test]
    fn names_an_unknown_field() {
        let json = "{\n  \"rules\": [],\n  \"rulez\": 1\n}";
        assert_eq!(path_of_error::<Doc>(json), "rulez");
        let nested = r#"{"rules": [{"name": "a", "limit": 1, "burst": 2}]}"#;
        assert_eq!(path_of_error::<Doc>(nested), "rules[0].burst");
    }

    #[test]
    fn escaped_quotes_and_brackets_in_strings_do_not_confuse_it() {
        let json = r#"{"rules": [{"name": "a\"],{[", "limit": "x"}]}"#;
        assert_eq!(path_of_error::<Doc>(json), "rules[0].limit");
    }

    #[test]
    fn the_root_has_an_empty_path() {
        assert_eq!(path_of_error::<Doc>("{"), "");
        assert_eq!(path_of_error::<Doc>("true"), "");
        assert_eq!(path_of_error::<Doc>("[1"), "[0]");
    }

    #[test]
    fn positions_past_the_end_are_clamped() {
        assert_eq!(path_at(br#"{"a": [1, 2"#, 9, 99), "a[1]");
        assert_eq!(path_at(b"", 1, 1), "");
        assert_eq!(path_at(br#"{"unterminated"#, 1, 40), "unterminated");
    }
}
