//! Configuration errors that name the JSON path and the reason.

use std::fmt;

/// Why a configuration was refused: the JSON path of the offending value
/// (`rate_limits[1].limit`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path with `[index]` for array elements; empty for the document.
    pub path: String,
    /// A short lowercase reason.
    pub reason: String,
}

impl ConfigError {
    /// An error at `path`. Never inlined, like the path builders below:
    /// validation calls them at every check, and copies would only make the
    /// plugin bigger.
    #[inline(never)]
    pub fn at(path: &JsonPath, reason: impl Into<String>) -> Self {
        Self {
            path: path.0.clone(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// A JSON path under construction while validating.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    /// The document root.
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of field `name` under this one.
    #[inline(never)]
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of element `index` of the array at this path.
    #[inline(never)]
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_dotted_paths_with_indices() {
        let path = JsonPath::root()
            .field("rate_limits")
            .index(1)
            .field("limit");
        assert_eq!(path.as_str(), "rate_limits[1].limit");
        let error = ConfigError::at(&path, "must be greater than 0");
        assert_eq!(
            error.to_string(),
            "rate_limits[1].limit: must be greater than 0"
        );
    }
}
