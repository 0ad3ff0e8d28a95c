//! HTTPS served by rotor itself (`server.tls_cert` + `server.tls_key`).

use std::{path::PathBuf, sync::Arc};

use rotor::Application;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        self, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    },
};

use crate::helpers::{Db, test_settings};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name)
}

/// A client that trusts only the test CA.
fn connector() -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn with_a_certificate_and_key_rotor_serves_https(pool: sqlx::SqlitePool) {
    // Arrange
    let db = Db::sqlite(pool);
    let mut settings = test_settings();
    settings.server.tls_cert = Some(fixture("cert.pem"));
    settings.server.tls_key = Some(fixture("key.pem"));
    let app = Application::with_store(settings, db.open_store().await)
        .await
        .unwrap();
    assert!(app.is_tls());
    let addr = app.local_addr().unwrap();
    tokio::spawn(app.run_until_stopped());

    // Act: a verified TLS connection to localhost, then a plain HTTP request on it.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector()
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap();

    // Assert
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#"{"status":"ok"}"#), "{response}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::get(format!("http://{addr}/healthz")).await;
    assert!(plain.is_err(), "{plain:?}");
    db.close().await;
}

#[sqlx::test(migrations = "migrations/sqlite")]
async fn a_key_that_is_not_pem_stops_start_up_naming_the_setting(pool: sqlx::SqlitePool) {
    let db = Db::sqlite(pool);
    let mut settings = test_settings();
    settings.server.tls_cert = Some(fixture("cert.pem"));
    settings.server.tls_key = Some(fixture("README.md"));
    let error = Application::with_store(settings, db.open_store().await)
        .await
        .err()
        .expect("start-up should fail");
    assert!(format!("{error:#}").contains("server.tls_key"), "{error:#}");
    db.close().await;
}
