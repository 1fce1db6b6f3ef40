//! A proxy-wasm HTTP filter that makes one kind of host call N times per
//! request and otherwise does nothing.
//!
//! `make bench PRICES=1` loads it into Envoy twice per host call, with N = 1
//! and N = 10, next to the do-nothing filter (`tests/noop-filter`): the
//! CPU time per request above the do-nothing filter with N = 1 is what the
//! first such call in a request costs, and the difference between N = 10
//! and N = 1, divided by 9, what each further one adds. floodgate's work
//! per request is mostly these calls, so their prices bound what it can
//! cost.
//!
//! Plugin configuration: `{"call": "<name>", "times": N}`, N from 0 to
//! 10,000. The calls:
//!
//! | `call` | the host call, N times per request |
//! | --- | --- |
//! | `clock` | `get_current_time` |
//! | `header` | `get_map_value_bytes` of the request header `x-api-key` |
//! | `header_map` | `get_map_bytes` of the whole request header map |
//! | `property` | `get_property(["source", "address"])` |
//! | `shared_get` | `get_shared_data` of one key, written at configure time |
//! | `shared_get_set` | `get_shared_data`, then `set_shared_data` of the same bytes with the CAS token just read (one pair counts as one call) |
//! | `counter` | `increment_metric` on the counter `probe.calls` (Envoy's `wasmcustom.probe.calls`), defined at configure time |
//! | `set_response_header` | `set_map_value` on the response headers, `x-probe-0` to `x-probe-<N-1>`, in `on_http_response_headers` |
//!
//! Every other call runs in `on_http_request_headers`, then the request
//! continues. A call that fails, or finds nothing where something must be
//! (no `x-api-key` header, no source address, no shared value), answers the
//! request with a 500 so that the bench sees it; a failed response header
//! is logged. A configuration it cannot use is refused with a log line.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use serde::Deserialize;

/// The shared-data key `shared_get` and `shared_get_set` read.
const SHARED_KEY: &str = "probe.shared";

/// Its value: 16 bytes, about the size of a rate-limit bucket.
const SHARED_VALUE: &[u8] = b"0123456789abcdef";

/// The counter `counter` increments.
const COUNTER: &str = "probe.calls";

/// The request header `header` reads.
const HEADER: &str = "x-api-key";

/// The most calls per request a configuration may ask for.
const MAX_TIMES: u32 = 10_000;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { probe: None }) });
}}

/// The host call a probe repeats.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Call {
    Clock,
    Header,
    HeaderMap,
    Property,
    SharedGet,
    SharedGetSet,
    Counter,
    SetResponseHeader,
}

/// The plugin configuration as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    call: Call,
    times: u32,
}

/// A configured probe, shared by the root and every stream.
struct Probe {
    call: Call,
    times: u32,
    /// The counter's id (`counter` only).
    counter: u32,
    /// `x-probe-0` to `x-probe-<times-1>` (`set_response_header` only),
    /// made once so that a request pays for the host calls alone.
    header_names: Vec<String>,
}

impl Probe {
    /// Makes the request-side call `times` times.
    fn on_request(&self) -> Result<(), String> {
        for _ in 0..self.times {
            self.request_call()?;
        }
        Ok(())
    }

    fn request_call(&self) -> Result<(), String> {
        let fail = |what: &str, status| format!("{what}: {status:?}");
        match self.call {
            Call::Clock => {
                hostcalls::get_current_time().map_err(|s| fail("get_current_time", s))?;
            }
            Call::Header => {
                hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, HEADER)
                    .map_err(|s| fail("get_map_value_bytes", s))?
                    .ok_or_else(|| format!("no {HEADER} request header"))?;
            }
            Call::HeaderMap => {
                hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
                    .map_err(|s| fail("get_map_bytes", s))?;
            }
            Call::Property => {
                hostcalls::get_property(vec!["source", "address"])
                    .map_err(|s| fail("get_property", s))?
                    .ok_or("no source.address property")?;
            }
            Call::SharedGet => {
                let (value, _) = hostcalls::get_shared_data(SHARED_KEY)
                    .map_err(|s| fail("get_shared_data", s))?;
                value.ok_or("no shared value")?;
            }
            Call::SharedGetSet => {
                let (value, cas) = hostcalls::get_shared_data(SHARED_KEY)
                    .map_err(|s| fail("get_shared_data", s))?;
                let value = value.ok_or("no shared value")?;
                hostcalls::set_shared_data(SHARED_KEY, Some(&value), cas)
                    .map_err(|s| fail("set_shared_data", s))?;
            }
            Call::Counter => {
                hostcalls::increment_metric(self.counter, 1)
                    .map_err(|s| fail("increment_metric", s))?;
            }
            // Made on the response instead.
            Call::SetResponseHeader => {}
        }
        Ok(())
    }

    /// Adds the response headers (`set_response_header` only).
    fn on_response(&self) -> Result<(), String> {
        for name in &self.header_names {
            hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some("1"))
                .map_err(|s| format!("set_map_value {name}: {s:?}"))?;
        }
        Ok(())
    }
}

fn log(level: LogLevel, message: &str) {
    // Nothing more to do when even logging fails.
    let _ = hostcalls::log(level, message);
}

/// Reads and checks the plugin configuration and prepares what the calls need.
fn configure() -> Result<Probe, String> {
    let raw = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .map_err(|s| format!("cannot read the plugin configuration: {s:?}"))?
        .ok_or(r#"no plugin configuration; expected {"call": "<name>", "times": N}"#)?;
    let settings: Settings =
        serde_json::from_slice(&raw).map_err(|e| format!("bad plugin configuration: {e}"))?;
    if settings.times > MAX_TIMES {
        return Err(format!(
            "bad plugin configuration: times is {}, at most {MAX_TIMES}",
            settings.times
        ));
    }
    let mut probe = Probe {
        call: settings.call,
        times: settings.times,
        counter: 0,
        header_names: Vec::new(),
    };
    match probe.call {
        Call::SharedGet | Call::SharedGetSet => {
            hostcalls::set_shared_data(SHARED_KEY, Some(SHARED_VALUE), None)
                .map_err(|s| format!("cannot write the shared value: {s:?}"))?;
        }
        Call::Counter => {
            probe.counter = hostcalls::define_metric(MetricType::Counter, COUNTER)
                .map_err(|s| format!("cannot define the counter {COUNTER}: {s:?}"))?;
        }
        Call::SetResponseHeader => {
            probe.header_names = (0..probe.times).map(|i| format!("x-probe-{i}")).collect();
        }
        Call::Clock | Call::Header | Call::HeaderMap | Call::Property => {}
    }
    Ok(probe)
}

/// The root context: reads the configuration, hands the probe to every stream.
struct Root {
    probe: Option<Rc<Probe>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match configure() {
            Ok(probe) => {
                self.probe = Some(Rc::new(probe));
                true
            }
            Err(why) => {
                log(LogLevel::Error, &format!("probe-filter: {why}"));
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            probe: self.probe.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The per-stream context: makes the calls, then lets the stream continue.
struct Stream {
    probe: Option<Rc<Probe>>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(probe) = &self.probe else {
            return Action::Continue;
        };
        match probe.on_request() {
            Ok(()) => Action::Continue,
            Err(why) => {
                log(LogLevel::Warn, &format!("probe-filter: {why}"));
                match hostcalls::send_http_response(500, vec![], Some(b"probe failed\n")) {
                    Ok(()) => Action::Pause,
                    Err(_) => Action::Continue,
                }
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Some(probe) = &self.probe {
            if let Err(why) = probe.on_response() {
                log(LogLevel::Warn, &format!("probe-filter: {why}"));
            }
        }
        Action::Continue
    }
}
