//! `http.tls.rustls` in the real server (the HTTP app's test kit), with certificates made
//! at test time and real TLS clients: rustls's, and raw bytes where a client library would
//! refuse to send what an attacker sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use xbuild_http::testing::TestServer;
// Links the crate, and with it its registration: nothing here names its items.
use xbuild_tls as _;

/// A CA, and certificates it signed for `a.example` and `b.example`, as PEM files.
struct Certificates {
    dir: tempfile::TempDir,
    issuer: CertifiedIssuer<'static, KeyPair>,
    ca: CertificateDer<'static>,
    leaves: Vec<CertificateDer<'static>>,
}

impl Certificates {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "xbuild-tls test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let mut certs = Self {
            dir,
            ca: ca.der().clone(),
            issuer: ca,
            leaves: Vec::new(),
        };
        for name in ["a.example", "b.example"] {
            let leaf = certs.issue(name);
            certs.leaves.push(leaf);
        }
        certs
    }

    /// Writes a new certificate and key for `name` (over any earlier files); returns it.
    fn issue(&self, name: &str) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(
            self.dir.path().join(format!("{name}.key")),
            key.serialize_pem(),
        )
        .unwrap();
        cert.der().clone()
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    /// A server config whose `tls` table has both certificates, plus `extra` fields.
    fn server(&self, extra: &str) -> String {
        format!(
            r#"
[servers.main]
listen = ["127.0.0.1:0"]
tls = {{ module = "rustls", certificates = [
  {{ certificate = '{}', key = '{}' }},
  {{ certificate = '{}', key = '{}' }},
]{extra} }}
[[servers.main.routes]]
handle = [{{ handler = "static_response", body = "secured" }}]
"#,
            self.path("a.example.pem"),
            self.path("a.example.key"),
            self.path("b.example.pem"),
            self.path("b.example.key"),
        )
    }

    /// A rustls client that trusts only the test CA.
    fn client(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// A TLS connection to `addr` asking for `name`, handshake done.
fn tls_connect(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    name: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, rustls::Error> {
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut connection = rustls::ClientConnection::new(config, server_name)?;
    let mut socket = connect(addr);
    while connection.is_handshaking() {
        connection
            .complete_io(&mut socket)
            .map_err(|e| match e.downcast::<rustls::Error>() {
                Ok(tls) => tls,
                Err(io) => rustls::Error::General(io.to_string()),
            })?;
    }
    Ok(rustls::StreamOwned::new(connection, socket))
}

fn tls12_and_13() -> Vec<&'static rustls::SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

#[test]
fn each_name_gets_its_certificate_over_http1() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server("")).unwrap();
    let config = certs.client(&[b"http/1.1"], &tls12_and_13());
    for (name, leaf) in ["a.example", "b.example"].iter().zip(&certs.leaves) {
        // The handshake verifies the certificate for `name` against the CA: it passes only
        // when the server chose that name's certificate.
        let mut tls = tls_connect(config.clone(), server.addr(), name).unwrap();
        assert_eq!(tls.conn.peer_certificates().unwrap()[0], *leaf);
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        write!(
            tls,
            "GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("secured"), "{answer}");
    }
    // A client that names no server (an IP address) gets the first certificate.
    let tls = tls_connect(
        certs.client(&[], &tls12_and_13()),
        server.addr(),
        "127.0.0.1",
    );
    // It is not valid for the IP address, so the client refuses it: the server sent one.
    let err = tls.expect_err("the first certificate does not cover 127.0.0.1");
    assert!(err.to_string().contains("certificate"), "{err}");
}

/// Renewed certificate files are served after a refresh (what SIGHUP or `reload` of an
/// unchanged config does), without a restart; files that are broken then leave the
/// certificates in use.
#[test]
fn a_refresh_serves_renewed_certificates_and_keeps_the_old_ones_if_the_new_are_broken() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server("")).unwrap();
    let config = certs.client(&[b"http/1.1"], &tls12_and_13());
    let served = || {
        tls_connect(config.clone(), server.addr(), "a.example")
            .unwrap()
            .conn
            .peer_certificates()
            .unwrap()[0]
            .clone()
    };
    assert_eq!(served(), certs.leaves[0]);
    let renewed = certs.issue("a.example");
    assert_eq!(served(), certs.leaves[0], "files are read on refresh only");
    server.refresh().unwrap();
    assert_eq!(served(), renewed);

    // A key that no longer matches its certificate: refused, the renewed pair stays.
    let unrelated = KeyPair::generate().unwrap();
    std::fs::write(
        certs.dir.path().join("a.example.key"),
        unrelated.serialize_pem(),
    )
    .unwrap();
    let err = server.refresh().unwrap_err().to_string();
    assert!(err.contains("certificates[0]"), "{err}");
    assert!(err.contains("is not the key of certificate"), "{err}");
    assert_eq!(served(), renewed);
}

#[test]
fn alpn_h2_gets_http2() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server("")).unwrap();
    let config = certs.client(&[b"h2", b"http/1.1"], &tls12_and_13());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("b.example").unwrap(), socket)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut client, connection) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(connection);
        let request = http::Request::get("https://b.example/").body(()).unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(text, b"secured");
    });
}

/// A ClientHello that offers TLS 1.1 at most (legacy_version 3.2, no supported_versions
/// extension), with two TLS 1.1 cipher suites.
fn tls11_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version: TLS 1.1
    hello.extend_from_slice(&[7; 32]); // random
    hello.push(0); // session_id
    // Cipher suites: two of TLS 1.1's, and one TLS 1.2 suite the server has, so that the
    // version alone is what it refuses.
    hello.extend_from_slice(&[0x00, 0x06, 0xc0, 0x13, 0x00, 0x2f, 0xc0, 0x2f]);
    hello.extend_from_slice(&[0x01, 0x00]); // compression: null
    // Extensions: the signature schemes and groups a client of the test certificates
    // (ECDSA P-256) would list, so only the version is missing.
    let extensions: &[u8] = &[
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, // signature_algorithms
        0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17, // supported_groups: secp256r1
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // ec_point_formats: uncompressed
    ];
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(hello.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn a_client_offering_only_tls_1_1_is_refused() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server("")).unwrap();
    let mut socket = connect(server.addr());
    socket.write_all(&tls11_client_hello()).unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    // One fatal alert record: protocol_version (70).
    assert_eq!(answer.first(), Some(&0x15), "{answer:?}");
    assert_eq!(&answer[answer.len() - 2..], [2, 70], "{answer:?}");
}

#[test]
fn min_version_1_3_refuses_a_tls_1_2_client() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server(", min_version = \"1.3\"")).unwrap();
    let err = tls_connect(
        certs.client(&[], &[&rustls::version::TLS12]),
        server.addr(),
        "a.example",
    )
    .expect_err("TLS 1.2 refused");
    assert!(err.to_string().contains("ProtocolVersion"), "{err}");
    // TLS 1.3 still works.
    tls_connect(
        certs.client(&[], &tls12_and_13()),
        server.addr(),
        "a.example",
    )
    .unwrap();
}

#[test]
fn a_client_that_never_finishes_its_handshake_is_closed() {
    let certs = Certificates::new();
    let server = TestServer::start_toml(&certs.server(", handshake_timeout = 0.3")).unwrap();
    let mut socket = connect(server.addr());
    // The start of a ClientHello, and then nothing.
    socket.write_all(&tls11_client_hello()[..20]).unwrap();
    let mut rest = Vec::new();
    // Closed by the server (its read timeout, 20 s, would be an error instead).
    socket.read_to_end(&mut rest).unwrap();
    // A client that completes its handshake is still served.
    tls_connect(
        certs.client(&[], &tls12_and_13()),
        server.addr(),
        "a.example",
    )
    .unwrap();
}

#[test]
fn plain_http_is_redirected_to_https() {
    let certs = Certificates::new();
    let config = certs
        .server("")
        .replace("tls = {", "redirect_from_http = [\"127.0.0.1:0\"]\ntls = {");
    let server = TestServer::start_toml(&config).unwrap();
    let https = server.addr_of("main").unwrap();
    let plain = server.addr_of("main (redirect)").unwrap();
    let mut socket = connect(plain);
    socket
        .write_all(b"POST /a/b?c=d HTTP/1.1\r\nHost: A.example:80\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
        "{answer}"
    );
    let location = format!("location: https://a.example:{}/a/b?c=d\r\n", https.port());
    assert!(answer.contains(&location), "{answer}");
}

fn refused(config: &str) -> String {
    match TestServer::start_toml(config) {
        Ok(_) => panic!("config accepted:\n{config}"),
        // As the host prints it: the message, then its help.
        Err(err) => xbuild_core::error::render(&*err),
    }
}

#[test]
fn bad_tls_configs_are_refused_naming_what_is_wrong() {
    let certs = Certificates::new();
    let good = certs.server("");
    let missing = good.replace("a.example.pem", "missing.pem");
    let err = refused(&missing);
    assert!(
        err.contains("certificates[0]") && err.contains("missing.pem"),
        "{err}"
    );
    // b's key with a's certificate.
    let swapped = good.replacen("a.example.key", "b.example.key", 1);
    let err = refused(&swapped);
    assert!(err.contains("is not the key of certificate"), "{err}");
    let err = refused(&certs.server(", min_version = \"1.1\""));
    assert!(err.contains("invalid min_version `1.1`"), "{err}");
    let err = refused(&certs.server(", handshake_timeout = 0"));
    assert!(err.contains("handshake_timeout"), "{err}");
    let err = refused(&good.replace("tls = {", "protocols = [\"h2c\"]\ntls = {"));
    assert!(err.contains("use `h2`"), "{err}");
    let empty = "[servers.main]\nlisten = [\"127.0.0.1:0\"]\ntls = { module = \"rustls\", certificates = [] }\n";
    assert!(refused(empty).contains("`certificates` is empty"));
    let not_a_module =
        "[servers.main]\nlisten = [\"127.0.0.1:0\"]\ntls = { module = \"openssl\" }\n";
    let err = refused(not_a_module);
    assert!(err.contains("openssl") && err.contains("rustls"), "{err}");
    let no_tls = "[servers.main]\nlisten = [\"127.0.0.1:0\"]\nredirect_from_http = [\":80\"]\n";
    assert!(refused(no_tls).contains("no `tls`"));
}

#[test]
fn certificate_files_are_read_at_provision_so_new_ones_are_used_by_the_next_config() {
    let certs = Certificates::new();
    let config = certs.server("");
    let first = TestServer::start_toml(&config).unwrap();
    // Replace a.example's files with b.example's: a config loaded now reads the new ones.
    std::fs::copy(certs.path("b.example.pem"), certs.path("a.example.pem")).unwrap();
    std::fs::copy(certs.path("b.example.key"), certs.path("a.example.key")).unwrap();
    let second = TestServer::start_toml(&config).unwrap();
    let client = certs.client(&[], &tls12_and_13());
    let seen = |server: &TestServer| {
        tls_connect(client.clone(), server.addr(), "a.example")
            .map(|tls| tls.conn.peer_certificates().unwrap()[0].clone())
    };
    assert_eq!(seen(&first).unwrap(), certs.leaves[0]);
    // a.example's first certificate is now b.example's, which does not cover a.example:
    // the client refuses it, which shows the server read the new file.
    assert!(seen(&second).is_err());
}
