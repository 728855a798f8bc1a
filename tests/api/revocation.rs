//! RevokeConnection at the provider (RFC 7009): the refresh token, then the
//! access token, revoked where the provider has an endpoint; the local
//! revoke stands whatever the provider answers, and the answer says which.

use authbroker::pb::{self, ProviderRevocation};
use tonic::Code;

use crate::{fake::Fault, helpers::*};

/// ARterra's dialect as a plain oauth2 provider with a revocation endpoint.
fn revocable() -> ExtraProviders {
    std::sync::Arc::new(|fakes: &Fakes| {
        let fake = &fakes.arterra;
        format!(
            "[providers.revocable]\nkind = \"oauth2\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
             redirect_uris = [\"{CALLBACK}\"]\nauthorize_url = \"{}\"\ntoken_url = \"{}\"\nuserinfo_url = \"{}\"\n\
             revocation_url = \"{}\"\nuser_id_field = \"id\"\nclient_auth = \"basic\"\nbody_encoding = \"json\"\n\
             code_redirect_uri = false\npkce = false\n",
            fake.client_id(),
            fake.client_secret(),
            fake.authorize_url(),
            fake.token_url(),
            fake.userinfo_url().expect("info endpoint"),
            fake.revocation_url(),
        )
    })
}

fn begin_request(provider: &str, subject: &str) -> pb::BeginAuthRequest {
    pb::BeginAuthRequest {
        provider: provider.into(),
        subject: subject.into(),
        redirect_uri: CALLBACK.into(),
        ..Default::default()
    }
}

async fn revoking_revokes_at_the_provider_too(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Options {
            extra_providers: Some(revocable()),
            ..Options::default()
        },
    )
    .await;
    let fake = app.fakes.arterra.clone();
    let mut client = app.billing().await;
    let conn = connect_via(&mut client, &fake, begin_request("revocable", "u"), USER).await;
    let (access, refresh) = (
        fake.last_access_token().expect("issued"),
        fake.last_refresh_token().expect("issued"),
    );
    assert!(fake.access_token_works(&access) && fake.refresh_token_works(&refresh));
    let revoked = revoke(&mut client, &conn.id).await;
    assert_eq!(revoked.provider_revocation(), ProviderRevocation::Confirmed);
    assert_eq!(
        revoked.connection.expect("connection").status(),
        pb::ConnectionStatus::Revoked
    );
    assert_eq!(fake.revocations(), ["refresh_token", "access_token"]);
    assert!(
        !fake.access_token_works(&access),
        "the access token is dead there"
    );
    assert!(
        !fake.refresh_token_works(&refresh),
        "the refresh token is dead there"
    );
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    // Again: nothing left to send.
    let again = revoke(&mut client, &conn.id).await;
    assert_eq!(
        again.provider_revocation(),
        ProviderRevocation::AlreadyRevoked
    );
    assert_eq!(fake.revocations().len(), 2);

    // The provider failing: revoked here all the same, and said so.
    let other = connect_via(&mut client, &fake, begin_request("revocable", "v"), USER).await;
    fake.set_revocation_fault(Fault::ServerError);
    let failed = revoke(&mut client, &other.id).await;
    assert_eq!(failed.provider_revocation(), ProviderRevocation::Failed);
    let status = token(&mut client, &other.id, 60)
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");

    // A provider without an endpoint.
    let ares = connect(&app, &mut client, "ares", "u").await;
    let plain = revoke(&mut client, &ares.id).await;
    assert_eq!(plain.provider_revocation(), ProviderRevocation::NoEndpoint);
}

on_both!(revoking_revokes_at_the_provider_too);
