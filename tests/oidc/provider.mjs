// Test OpenID Provider for the integration tests: oidc-provider with one
// confidential client, one end user and interactions that finish by
// themselves, so an authorization-code flow needs no human. See README.md.
//
//   OIDC_PORT=0 OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... \
//   OIDC_REDIRECT_URI=https://app.example.com/oauth/callback \
//   OIDC_ACCOUNT=alice-123 node tests/oidc/provider.mjs
//
// Prints one line to stdout once listening: `listening http://127.0.0.1:<port>`.
// Everything else (warnings, errors) goes to stderr.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

// oidc-provider prints its notices with console.info (stdout); keep stdout
// for the one `listening` line.
console.info = console.error;
console.log = console.error;

const HOST = '127.0.0.1';

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`provider.mjs: ${name} must be set`);
    process.exit(2);
  }
  return value;
}

const port = Number(env('OIDC_PORT', '0'));
const clientId = env('OIDC_CLIENT_ID');
const clientSecret = env('OIDC_CLIENT_SECRET');
const redirectUri = env('OIDC_REDIRECT_URI');
const accountId = env('OIDC_ACCOUNT');

// The issuer contains the port, so bind first (port 0 = any free port) and
// build the provider once the port is known.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(port, HOST, resolve);
});
const issuer = `http://${HOST}:${server.address().port}`;

// A fresh RS256 signing key for every run.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(6).toString('hex')}`,
  alg: 'RS256',
  use: 'sig',
};

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  async findAccount(_ctx, sub) {
    if (sub !== accountId) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: `${sub}@example.test` };
      },
    };
  },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  pkce: { required: () => true },
  // A refresh token on every code exchange, not only with offline_access.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 60 * 60,
    Grant: 14 * 24 * 60 * 60,
    Interaction: 600,
    Session: 14 * 24 * 60 * 60,
  },
  renderError(ctx, out) {
    ctx.type = 'json';
    ctx.body = out;
  },
});

// Errors go to stderr, with the detail that the HTTP response leaves out.
for (const event of ['server_error', 'authorization.error', 'grant.error', 'revocation.error', 'userinfo.error']) {
  provider.on(event, (_ctx, err) => {
    const detail = [err.error_description, err.error_detail].filter(Boolean).join(': ');
    console.error(`provider.mjs: ${event}: ${err.message}${detail ? ` (${detail})` : ''}`);
  });
}

// The interaction shortcut: log the one account in, then grant whatever the
// client asked for.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;

  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId } }, { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'consent') {
    const grant = (details.grantId && await provider.Grant.find(details.grantId))
      || new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  throw new Error(`unexpected prompt ${prompt.name}`);
}

const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.method === 'GET' && /^\/interaction\/[^/?]+(\?|$)/.test(req.url)) {
    interaction(req, res).catch((err) => {
      console.error(`provider.mjs: interaction: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
      if (!res.headersSent) {
        res.statusCode = err.statusCode ?? 500;
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ error: err.error ?? 'server_error', error_description: err.error_description ?? err.message }));
      }
    });
    return;
  }
  callback(req, res);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

process.stdout.write(`listening ${issuer}\n`);
