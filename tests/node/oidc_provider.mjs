// An OpenID Connect provider for Keel's OAuth2 tests (npm `oidc-provider`).
//
//   node oidc_provider.mjs [--port N] [--issuer URL] [--redirect-uri URI]...
//
// Defaults come from OIDC_PORT (0: any free port), OIDC_ISSUER
// (http://127.0.0.1:<port>) and OIDC_REDIRECT_URIS (space separated). It
// listens on 127.0.0.1 only, prints `READY <issuer>` on stdout once listening
// and exits 0 on SIGTERM or SIGINT.
//
// One confidential client, `keel-test` / `keel-test-secret`, may use the
// authorization_code grant with or without PKCE (S256), authenticating at the
// token endpoint with client_secret_post or client_secret_basic (oidc-provider
// accepts either for a client registered with one of them). It is a "native"
// client so that, as RFC 8252 asks, a loopback redirect URI matches on any
// port: registering http://127.0.0.1/cb also allows http://127.0.0.1:8090/cb.
//
// The development login form accepts any login and password. The login
// becomes the account: sub = login; email = login if it has an "@", else
// <login>@oidc.test; email_verified unless the login contains "unverified";
// name = the part before "@"; picture = a PNG served by this process.
import http from 'node:http';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const CLIENT_ID = 'keel-test';
const CLIENT_SECRET = 'keel-test-secret';
// A 1x1 transparent PNG, served as every account's picture.
const PICTURE = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    issuer: { type: 'string', default: process.env.OIDC_ISSUER },
    'redirect-uri': {
      type: 'string',
      multiple: true,
      default: (process.env.OIDC_REDIRECT_URIS ?? '').split(/\s+/).filter(Boolean),
    },
  },
});

function claimsOf(login, issuer) {
  const email = login.includes('@') ? login : `${login}@oidc.test`;
  return {
    sub: login,
    email,
    email_verified: !login.includes('unverified'),
    name: email.split('@')[0],
    picture: `${issuer}/pictures/${encodeURIComponent(login)}.png`,
  };
}

function createProvider(issuer, redirectUris) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        application_type: 'native',
        redirect_uris: redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'picture'],
    },
    scopes: ['openid', 'email', 'profile'],
    // Put the scope's claims in the ID token too, not only at userinfo.
    conformIdTokenClaims: false,
    pkce: { required: () => false },
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
    },
    cookies: { keys: ['keel-test-cookie-key'] },
    async findAccount(_ctx, sub) {
      return { accountId: sub, claims: async () => claimsOf(sub, issuer) };
    },
  });
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path.startsWith('/pictures/')) {
      ctx.type = 'image/png';
      ctx.body = PICTURE;
      return;
    }
    await next();
  });
  return provider;
}

const server = http.createServer();
server.listen(Number(values.port), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = values.issuer ?? `http://127.0.0.1:${port}`;
  server.on('request', createProvider(issuer, values['redirect-uri']).callback());
  console.log(`READY ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
