//! `--engine`: which storage engine, parsed and checked at start, shown with any password
//! masked.

/// The storage engine (`--engine`).
#[derive(Clone, PartialEq, Eq)]
pub enum EngineKind {
    /// SQLite in the data directory, and in-process fan-out.
    Embedded,
    /// A Redis server, or a Redis Cluster (`redis+cluster://`).
    Redis(RedisUrl),
}

/// A Redis URL; shown with its password masked.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // redis://user:secret@host -> redis://user:***@host
        match (self.0.find("://"), self.0.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let auth = &self.0[scheme + 3..at];
                let user = auth.split(':').next().unwrap_or_default();
                write!(f, "{}{user}:***{}", &self.0[..scheme + 3], &self.0[at..])
            }
            _ => f.write_str(&self.0),
        }
    }
}

impl std::fmt::Debug for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineKind::Embedded => f.write_str("embedded"),
            EngineKind::Redis(url) => write!(f, "{url}"),
        }
    }
}

impl EngineKind {
    pub(super) fn parse(value: &str) -> Result<Self, String> {
        if value == "embedded" {
            return Ok(EngineKind::Embedded);
        }
        if value.starts_with("redis://") || value.starts_with("rediss://") {
            redis::Client::open(value).map_err(|e| format!("not a usable Redis URL: {e}"))?;
            return Ok(EngineKind::Redis(RedisUrl(value.to_owned())));
        }
        if let Some(seeds) = value.strip_prefix("redis+cluster://") {
            for seed in seeds.split(',') {
                redis::Client::open(format!("redis://{seed}"))
                    .map_err(|e| format!("not a usable Redis Cluster node `{seed}`: {e}"))?;
            }
            return Ok(EngineKind::Redis(RedisUrl(value.to_owned())));
        }
        Err("expected `embedded`, a redis:// URL or redis+cluster://host:port,host:port".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_are_checked_and_passwords_masked() {
        assert_eq!(EngineKind::parse("embedded"), Ok(EngineKind::Embedded));
        assert!(EngineKind::parse("postgres://x").is_err());
        let engine = EngineKind::parse("redis://app:hunter2@10.0.0.5:6379/2").unwrap();
        let shown = format!("{engine:?}");
        assert_eq!(shown, "redis://app:***@10.0.0.5:6379/2");
        assert!(!shown.contains("hunter2"));
        assert_eq!(
            format!("{:?}", EngineKind::parse("redis://127.0.0.1:6379").unwrap()),
            "redis://127.0.0.1:6379"
        );
        let cluster = EngineKind::parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000").unwrap();
        assert_eq!(
            format!("{cluster:?}"),
            "redis+cluster://:***@10.0.0.1:7000,10.0.0.2:7000"
        );
        let bad = EngineKind::parse("redis+cluster://10.0.0.1:7000,:bad:port:").unwrap_err();
        assert!(bad.contains(":bad:port:"), "{bad}");
    }
}
