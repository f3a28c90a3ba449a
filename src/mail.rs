//! Outgoing mail (password resets) over SMTP. Without PAYWALL_SMTP_URL nothing is sent.

use lettre::message::{Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// `smtp://host:port` (plain, for a local relay), `smtp://…?tls=required`
    /// (STARTTLS) or `smtps://…` (TLS), with optional `user:password@`.
    pub fn new(url: &str, from: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("PAYWALL_SMTP_URL: not an SMTP URL lettre accepts: {e}"))?
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("PAYWALL_MAIL_FROM: {e}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends the reset link. The error says what failed without the link in it.
    pub async fn send_password_reset(
        &self,
        to: &str,
        link: &str,
        valid_minutes: i64,
    ) -> Result<(), String> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| format!("recipient: {e}"))?;
        let body = format!(
            "Someone asked to reset the password of this account.\n\n\
             To choose a new password, open this link within {valid_minutes} minutes:\n\n{link}\n\n\
             If it was not you, ignore this message: your password stays as it is.\n"
        );
        // A Message-ID (named after this host) and MIME headers: mail without them is
        // marked as spam, and without a charset the accents of a name come out wrong.
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Reset your password")
            .message_id(None)
            .date_now()
            .singlepart(SinglePart::plain(body))
            .map_err(|e| format!("message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP: {e}"))
    }
}
