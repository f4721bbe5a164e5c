//! The S3 connection: the runtime the store blocks on, the SDK client configured from
//! the standard AWS settings plus flowc's endpoint override, and the translation of SDK
//! errors into [`StoreError`]s that name the object and say what to check.

use std::io;

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use tokio::runtime::Runtime;

use crate::store::error::StoreError;

/// flowc's own endpoint override; wins over the AWS SDK's variables.
pub const ENDPOINT_ENV_VAR: &str = "FLOWC_S3_ENDPOINT_URL";

/// The standard AWS variables for an S3-only and an all-services endpoint, in the
/// order they are honoured after [`ENDPOINT_ENV_VAR`].
const AWS_ENDPOINT_ENV_VARS: [&str; 2] = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];

/// The region used when neither the settings nor the AWS chain (environment, profile,
/// instance metadata) name one. S3-compatible servers mostly ignore it; for AWS S3 a
/// wrong region is reported as a redirect, whose message says to set `AWS_REGION`.
const FALLBACK_REGION: &str = "us-east-1";

/// Worker threads of the store's runtime. The store's callers are synchronous and
/// block on it; two workers keep the few concurrent requests (multipart parts, listing
/// checks) moving without taking the machine.
const WORKER_THREADS: usize = 2;

/// Static credentials, for callers that have them from somewhere other than the AWS
/// chain (tests, a settings file).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret, not even in a debug dump.
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// How to reach S3. [`S3Settings::from_env`] is what the shim uses; every `None` falls
/// back to the AWS SDK's standard chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// An S3-compatible server (MinIO, Ceph, a test server). Setting it also switches
    /// to path-style addressing (`http://host/bucket/key`), which such servers expect.
    pub endpoint_url: Option<String>,
    /// Over `AWS_REGION` / the profile / instance metadata.
    pub region: Option<String>,
    /// Over the credential chain (environment, profile, web identity, ECS, IMDS).
    pub credentials: Option<StaticCredentials>,
}

impl S3Settings {
    /// The endpoint from `FLOWC_S3_ENDPOINT_URL`, else `AWS_ENDPOINT_URL_S3`, else
    /// `AWS_ENDPOINT_URL` (empty values count as unset); region and credentials from
    /// the AWS chain.
    pub fn from_env() -> S3Settings {
        let endpoint_url = std::iter::once(ENDPOINT_ENV_VAR)
            .chain(AWS_ENDPOINT_ENV_VARS)
            .find_map(|var| std::env::var(var).ok().filter(|value| !value.is_empty()));
        S3Settings {
            endpoint_url,
            ..S3Settings::default()
        }
    }
}

/// A client and the runtime its futures run on. The client comes first so that it is
/// dropped (closing its pooled connections) while the runtime is still there.
pub(crate) struct Connection {
    pub(crate) client: Client,
    pub(crate) runtime: Runtime,
}

impl Connection {
    /// Builds the runtime and the client. Loads the region and prepares the credential
    /// chain; credentials themselves are fetched on the first request, so a missing
    /// credential shows up as that request's error.
    pub(crate) fn new(settings: &S3Settings) -> io::Result<Connection> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("flowc-s3")
            .enable_all()
            .build()?;
        let client = runtime.block_on(build_client(settings));
        Ok(Connection { client, runtime })
    }
}

async fn build_client(settings: &S3Settings) -> Client {
    // rustls with ring: see runtime-shim/Cargo.toml for why not the SDK's default.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(creds) = &settings.credentials {
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "flowc-settings",
        ));
    }
    let shared = loader.load().await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        config = config.region(Region::new(FALLBACK_REGION));
    }
    if let Some(endpoint) = &settings.endpoint_url {
        // Compatible servers rarely support virtual-hosted buckets (they need DNS per
        // bucket) and many reject the newer default integrity checksums; the store
        // verifies every blob by its SHA-256 on read anyway.
        config = config
            .endpoint_url(endpoint.clone())
            .force_path_style(true)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    }
    Client::from_conf(config.build())
}

/// The HTTP status of a failed request's response, when one came back.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

/// Whether the request failed because the object does not exist (HTTP 404 with
/// `NoSuchKey`, or a bare 404 for HEAD, which has no body to carry a code). A missing
/// bucket (`NoSuchBucket`, also 404) is not this: it is a configuration error.
pub(crate) fn is_missing<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    status(err) == Some(404) && err.code() != Some("NoSuchBucket")
}

/// Whether a conditional write failed because the object exists (412), or because
/// another conditional write of the same key was in flight (409), which S3 asks to
/// retry.
pub(crate) enum Conflict {
    Exists,
    InFlight,
}

pub(crate) fn conflict<E>(err: &SdkError<E, HttpResponse>) -> Option<Conflict> {
    match status(err) {
        Some(412) => Some(Conflict::Exists),
        Some(409) => Some(Conflict::InFlight),
        _ => None,
    }
}

/// Turns an SDK error into a [`StoreError::Io`] naming `url` (the `s3://` address of
/// the object or prefix) and saying what to check. The SDK's debug structures never
/// reach the message: the service's code and message, or the transport's error chain.
pub(crate) fn sdk_error<E>(
    action: &'static str,
    url: &str,
    err: SdkError<E, HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = status(&err);
    let (kind, message) = match (&err, status) {
        (SdkError::ServiceError(_), Some(status)) => {
            describe_response(status, err.code(), err.message())
        }
        // A response the SDK could not make sense of: its reason is in the chain.
        (SdkError::ResponseError(_), Some(status)) => {
            let (kind, message) = describe_transport(&DisplayErrorContext(&err).to_string());
            (kind, format!("HTTP {status}: {message}"))
        }
        _ => describe_transport(&DisplayErrorContext(&err).to_string()),
    };
    StoreError::io(action, url, io::Error::new(kind, message))
}

/// A message for an error response: what happened, then what to check.
fn describe_response(
    status: u16,
    code: Option<&str>,
    message: Option<&str>,
) -> (io::ErrorKind, String) {
    let what = match (code, message) {
        (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
        (Some(code), None) => format!("HTTP {status} {code}"),
        (None, _) => format!("HTTP {status}"),
    };
    let credentials = "check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE, or the IAM role of the pod or job) and that their policy allows this action on the bucket";
    let (kind, hint) = match (status, code.unwrap_or_default()) {
        (_, "NoSuchBucket") => (
            io::ErrorKind::NotFound,
            "the bucket does not exist: check the bucket name in the datastore root, and the endpoint (FLOWC_S3_ENDPOINT_URL) when not using AWS",
        ),
        (301 | 307 | 400, "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")
        | (301, _) => (
            io::ErrorKind::Other,
            "the bucket is in another region: set AWS_REGION to the bucket's region",
        ),
        (
            _,
            "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "ExpiredToken" | "InvalidToken"
            | "TokenRefreshRequired",
        ) => (io::ErrorKind::PermissionDenied, credentials),
        (401 | 403, _) => (io::ErrorKind::PermissionDenied, credentials),
        (500..=599, _) => (
            io::ErrorKind::Other,
            "the service failed after the SDK's retries; try again, and check the service's health",
        ),
        _ => (
            io::ErrorKind::Other,
            "check the datastore root, the region (AWS_REGION) and the endpoint (FLOWC_S3_ENDPOINT_URL)",
        ),
    };
    (kind, format!("{what}; {hint}"))
}

/// A message for a request that got no response: the error chain, then what to check.
fn describe_transport(chain: &str) -> (io::ErrorKind, String) {
    let lower = chain.to_ascii_lowercase();
    let hint = if lower.contains("credential") {
        "no usable AWS credentials were found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or give the pod (IRSA) or the Batch job an IAM role"
    } else if lower.contains("region") {
        "set AWS_REGION to the bucket's region"
    } else {
        "check the network, the endpoint (FLOWC_S3_ENDPOINT_URL / AWS_ENDPOINT_URL_S3, if any) and the region (AWS_REGION)"
    };
    (io::ErrorKind::Other, format!("{chain}; {hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_says_to_check_credentials() {
        let (kind, text) = describe_response(403, Some("AccessDenied"), Some("Access Denied"));
        assert_eq!(kind, io::ErrorKind::PermissionDenied);
        assert!(
            text.starts_with("HTTP 403 AccessDenied: Access Denied; check the credentials"),
            "{text}"
        );
    }

    #[test]
    fn missing_bucket_and_wrong_region_get_their_own_hints() {
        let (kind, text) = describe_response(404, Some("NoSuchBucket"), None);
        assert_eq!(kind, io::ErrorKind::NotFound);
        assert!(text.contains("bucket does not exist"), "{text}");
        let (_, text) = describe_response(301, Some("PermanentRedirect"), None);
        assert!(text.contains("AWS_REGION"), "{text}");
        let (_, text) = describe_response(400, Some("AuthorizationHeaderMalformed"), None);
        assert!(text.contains("another region"), "{text}");
    }

    #[test]
    fn transport_errors_point_at_what_failed() {
        let (_, text) = describe_transport(
            "dispatch failure: io error: tcp connect error: Connection refused (os error 111)",
        );
        assert!(text.contains("Connection refused"), "{text}");
        assert!(text.contains("FLOWC_S3_ENDPOINT_URL"), "{text}");
        let (_, text) = describe_transport(
            "dispatch failure: other: failed to load credentials: no providers in chain provided credentials",
        );
        assert!(text.contains("no usable AWS credentials"), "{text}");
    }

    #[test]
    fn static_credentials_never_print_the_secret() {
        let creds = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
            session_token: Some("token".into()),
        };
        let text = format!("{creds:?}");
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
        assert!(
            !text.contains("wJalrXUtnFEMI") && !text.contains("token\""),
            "{text}"
        );
    }
}
