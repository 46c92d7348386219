//! The UM-Bridge HTTP server: `GET /Info`, `POST /ModelInfo`, `/InputSizes`, `/OutputSizes`,
//! `/Evaluate`, `/Gradient`, `/ApplyJacobian`, `/ApplyHessian` (tiny_http, one worker thread per
//! concurrent request, each request with its own solver state: a fresh linearization).
//!
//! Errors are protocol errors: HTTP 400 with `{"error": {"type", "message"}}` of type
//! `ModelNotFound` (checked first), `UnsupportedFeature` or `InvalidInput`; HTTP 500 with
//! `InvalidOutput` when the model fails or returns non-finite numbers (JSON has no NaN).

use std::io::Read;
use std::time::Instant;

use super::protocol::{
    ErrorBody, ErrorDetail, Info, ModelInfo, Named, Output, Outputs, Request, Sizes, SupportBody,
    PROTOCOL_VERSION,
};
use super::ServedModel;
use crate::error::{Error, Result};

/// A model under its UM-Bridge name.
pub struct Served<'a> {
    pub name: String,
    pub model: Box<dyn ServedModel + 'a>,
}

/// The largest request body accepted (bytes): a 4,225-vector is ~100 kB of JSON.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// A response: status and JSON body.
type Reply = (u16, String);

fn json<T: serde::Serialize>(status: u16, body: &T) -> Reply {
    (status, serde_json::to_string(body).expect("serializable"))
}

fn error(status: u16, kind: &'static str, message: impl Into<String>) -> Reply {
    json(
        status,
        &ErrorBody {
            error: ErrorDetail {
                kind,
                message: message.into(),
            },
        },
    )
}

/// Serves `models` on `host:port` with `threads` workers until SIGINT or SIGTERM, then finishes
/// the requests in progress and returns.
pub fn serve(models: &[Served<'_>], host: &str, port: u16, threads: usize) -> Result<()> {
    let address = format!("{host}:{port}");
    let server = listen(&address).map_err(|e| {
        Error::invalid(
            "command line",
            "--host / --port",
            "an address this machine can listen on",
            format!("{address}: {e}"),
        )
    })?;
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let threads = threads.max(1);
    eprintln!(
        "UM-Bridge server on http://{address} (models: {}; {threads} concurrent requests; \
         Ctrl-C or SIGTERM stops it after the requests in progress)",
        names.join(", ")
    );
    let server = std::sync::Arc::new(server);
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (server, stopping) = (server.clone(), stopping.clone());
        // one handler per process: a second server in the same process (tests, benches) is
        // stopped with its process instead
        let _ = ctrlc::set_handler(move || {
            if !stopping.swap(true, std::sync::atomic::Ordering::SeqCst) {
                eprintln!("UM-Bridge server: stopping after the requests in progress");
                for _ in 0..threads {
                    server.unblock();
                }
            }
        });
    }
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                match server.recv() {
                    Ok(request) => handle(models, request),
                    Err(_) if stopping.load(std::sync::atomic::Ordering::SeqCst) => return,
                    Err(e) => {
                        eprintln!("UM-Bridge server: {e}");
                        return;
                    }
                }
            });
        }
    });
    eprintln!("UM-Bridge server: stopped");
    Ok(())
}

/// A tiny_http server on `address` whose connections send without Nagle's delay: a response is
/// written as headers, then body, and with Nagle the body waits for the client's (delayed)
/// acknowledgement of the headers — 10 ms per request on loopback instead of well under one.
/// Accepted sockets inherit TCP_NODELAY from the listener.
fn listen(
    address: &str,
) -> std::result::Result<tiny_http::Server, Box<dyn std::error::Error + Send + Sync>> {
    use std::net::ToSocketAddrs;
    let addr = address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| format!("{address} resolves to no address"))?;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let listener: std::net::TcpListener = socket.into();
    tiny_http::Server::from_listener(listener, None)
}

/// Reads, answers and logs one request.
fn handle(models: &[Served<'_>], mut request: tiny_http::Request) {
    let started = Instant::now();
    let (method, url) = (request.method().to_string(), request.url().to_string());
    let reply = match read_body(&mut request) {
        Ok(body) => respond(models, &method, &url, &body),
        Err(reply) => reply,
    };
    eprintln!(
        "{method} {url} → {} in {:.1} ms",
        reply.0,
        1e3 * started.elapsed().as_secs_f64()
    );
    let header =
        tiny_http::Header::from_bytes("Content-Type", "application/json").expect("valid header");
    // with its length, not chunked (tiny_http chunks bodies over 32 KiB: a 4,225-vector is 85 KB)
    let response = tiny_http::Response::from_string(reply.1)
        .with_status_code(reply.0)
        .with_header(header)
        .with_chunked_threshold(usize::MAX);
    if let Err(e) = request.respond(response) {
        eprintln!("UM-Bridge server: could not send the response to {url}: {e}");
    }
}

fn read_body(request: &mut tiny_http::Request) -> std::result::Result<String, Reply> {
    if request.body_length().is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(error(413, "InvalidInput", "request body too large"));
    }
    let mut body = String::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_string(&mut body)
        .map_err(|e| error(400, "InvalidInput", format!("unreadable request body: {e}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(error(413, "InvalidInput", "request body too large"));
    }
    Ok(body)
}

/// The reply to one request.
pub fn respond(models: &[Served<'_>], method: &str, url: &str, body: &str) -> Reply {
    let path = url.split('?').next().unwrap_or(url);
    if path == "/Info" {
        let models = models.iter().map(|m| m.name.as_str()).collect();
        return json(
            200,
            &Info {
                protocol_version: PROTOCOL_VERSION,
                models,
            },
        );
    }
    let endpoints = [
        "/ModelInfo",
        "/InputSizes",
        "/OutputSizes",
        "/Evaluate",
        "/Gradient",
        "/ApplyJacobian",
        "/ApplyHessian",
    ];
    if !endpoints.contains(&path) {
        return error(404, "UnsupportedFeature", format!("no endpoint {path}"));
    }
    if method != "POST" {
        return error(400, "InvalidInput", format!("{path} takes a POST request"));
    }
    // a well-formed model request is parsed once; otherwise the name first (a wrong name is
    // ModelNotFound whatever else the body holds), then the endpoint's fields for the error
    let parsed: Option<Request> = match path {
        "/Evaluate" | "/Gradient" | "/ApplyJacobian" | "/ApplyHessian" => {
            serde_json::from_str(body).ok()
        }
        _ => None,
    };
    let named: Named = match parsed.as_ref().map(|r| Named {
        name: r.name.clone(),
    }) {
        Some(n) => n,
        None => match serde_json::from_str(body) {
            Ok(n) => n,
            Err(e) if e.is_syntax() || e.is_eof() => {
                return error(400, "InvalidInput", format!("the body is not JSON: {e}"))
            }
            Err(_) => return error(400, "InvalidInput", "the body has no model `name`"),
        },
    };
    let Some(served) = models.iter().find(|m| m.name == named.name) else {
        let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
        return error(
            400,
            "ModelNotFound",
            format!(
                "Model {} not found! The following are available: {names:?}.",
                named.name
            ),
        );
    };
    let model = served.model.as_ref();
    let support = model.support();
    match path {
        "/ModelInfo" => json(
            200,
            &ModelInfo {
                support: SupportBody {
                    evaluate: support.evaluate,
                    gradient: support.gradient,
                    apply_jacobian: support.apply_jacobian,
                    apply_hessian: support.apply_hessian,
                },
            },
        ),
        "/InputSizes" => json(
            200,
            &Sizes {
                input_sizes: Some(vec![model.input_size()]),
                output_sizes: None,
            },
        ),
        "/OutputSizes" => json(
            200,
            &Sizes {
                input_sizes: None,
                output_sizes: Some(vec![model.output_size()]),
            },
        ),
        _ => compute(model, path, parsed.ok_or(body)),
    }
}

/// `/Evaluate`, `/Gradient`, `/ApplyJacobian`, `/ApplyHessian` after the name was found.
fn compute(
    model: &dyn ServedModel,
    path: &str,
    request: std::result::Result<Request, &str>,
) -> Reply {
    let support = model.support();
    let (supported, feature) = match path {
        "/Evaluate" => (support.evaluate, "Evaluate"),
        "/Gradient" => (support.gradient, "Gradient"),
        "/ApplyJacobian" => (support.apply_jacobian, "ApplyJacobian"),
        _ => (support.apply_hessian, "ApplyHessian"),
    };
    if !supported {
        return error(
            400,
            "UnsupportedFeature",
            format!("{feature} not supported by model!"),
        );
    }
    let request: Request = match request.map_or_else(serde_json::from_str, Ok) {
        Ok(r) => r,
        Err(e) => {
            return error(
                400,
                "InvalidInput",
                format!("invalid {feature} request: {e}"),
            )
        }
    };
    if let Err(message) = check(model, path, &request) {
        return error(400, "InvalidInput", message);
    }
    let x = &request.input[0];
    let empty = Vec::new();
    let (sens, vec) = (
        request.sens.as_ref().unwrap_or(&empty),
        request.vec.as_ref().unwrap_or(&empty),
    );
    let result = match path {
        "/Evaluate" => model.evaluate(x).map(Some),
        "/Gradient" => model.gradient(x, sens).map(Some),
        "/ApplyJacobian" => model.apply_jacobian(x, vec).map(Some),
        _ => model.apply_hessian(x, sens, vec),
    };
    match result {
        Ok(Some(out)) if out.iter().all(|v| v.is_finite()) => {
            if path == "/Evaluate" {
                json(200, &Outputs { output: vec![out] })
            } else {
                json(200, &Output { output: out })
            }
        }
        Ok(Some(_)) => error(
            500,
            "InvalidOutput",
            "the model returned non-finite numbers",
        ),
        Ok(None) => error(
            400,
            "UnsupportedFeature",
            format!("{feature} not supported by model!"),
        ),
        Err(e) => error(500, "InvalidOutput", format!("the model failed: {e}")),
    }
}

/// The sizes and indices of a request, as the reference server checks them.
fn check(model: &dyn ServedModel, path: &str, r: &Request) -> std::result::Result<(), String> {
    let (d_in, d_out) = (model.input_size(), model.output_size());
    if r.input.len() != 1 {
        return Err(
            "Number of input parameters does not match model number of model inputs!".into(),
        );
    }
    if r.input[0].len() != d_in {
        return Err(format!(
            "Input parameter 0 has invalid length! Expected {d_in} but got {}.",
            r.input[0].len()
        ));
    }
    if !r.input[0].iter().all(|v| v.is_finite()) {
        return Err("Input parameter 0 has non-finite entries".into());
    }
    let wrt = [
        ("outWrt", r.out_wrt),
        ("inWrt", r.in_wrt),
        ("inWrt1", r.in_wrt1),
        ("inWrt2", r.in_wrt2),
    ];
    if let Some((name, i)) = wrt.iter().find(|(_, i)| *i != 0) {
        return Err(format!(
            "Invalid {name} index! Expected 0 (one input and one output), but got {i}"
        ));
    }
    let need = |field: &str, v: &Option<Vec<f64>>, n: usize| match v {
        Some(v) if v.len() == n && v.iter().all(|x| x.is_finite()) => Ok(()),
        Some(v) => Err(format!(
            "Vector {field} has invalid length or entries! Expected {n} finite numbers but got {}.",
            v.len()
        )),
        None => Err(format!("the request has no `{field}`")),
    };
    match path {
        "/Gradient" => need("sens", &r.sens, d_out),
        "/ApplyJacobian" => need("vec", &r.vec, d_in),
        "/ApplyHessian" => need("sens", &r.sens, d_out).and_then(|_| need("vec", &r.vec, d_in)),
        _ => Ok(()),
    }
}
