//! Email over SMTP through lettre: implicit TLS, STARTTLS (required, never
//! optional), or plain to a relay on this machine; optional login.

use super::{DeliveryError, Receipt, chain, clean};
use crate::config::{EmailConfig, SmtpSecurity};
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mfad_protocol::SecretString;

pub(super) struct Email {
    pub config: EmailConfig,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    pub fn new(config: EmailConfig, password: Option<SecretString>) -> Result<Self, String> {
        let host = config.host.as_str();
        let mut builder = match config.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::Plain => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| e.to_string())?
        .port(config.port)
        .timeout(Some(config.timeout));
        if let (Some(user), Some(password)) = (&config.username, password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        let from = config
            .from
            .parse()
            .map_err(|e| format!("email.from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            config,
            from,
        })
    }

    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: &str,
    ) -> Result<Receipt, DeliveryError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| DeliveryError::Build(format!("the address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| DeliveryError::Build(e.to_string()))?;
        let response = self.transport.send(message).await.map_err(|e| {
            if e.is_permanent() || e.is_transient() {
                DeliveryError::Rejected(clean(&e.to_string()))
            } else if e.is_timeout() {
                DeliveryError::Timeout(self.config.timeout)
            } else {
                DeliveryError::Connect(clean(&chain(&e)))
            }
        })?;
        let said: Vec<&str> = response.message().collect();
        Ok(Receipt {
            id: Some(clean(&format!("{} {}", response.code(), said.join(" ")))),
        })
    }
}
