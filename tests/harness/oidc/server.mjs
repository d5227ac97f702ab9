// A real OpenID Connect provider (panva's oidc-provider, from npm) for the Kafka OAUTHBEARER
// tests: the client-credentials grant for one client, RS256-signed JWT access tokens for the
// audience "urn:kafka", keys at /jwks (what the broker's validator reads).
//   OIDC_CLIENT_SECRET=... [OIDC_TOKEN_TTL_S=300] node server.mjs PORT CLIENT_ID
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId] = process.argv.slice(2);
const secret = process.env.OIDC_CLIENT_SECRET;
if (!port || !clientId || !secret) {
  console.error('usage: OIDC_CLIENT_SECRET=... node server.mjs PORT CLIENT_ID');
  process.exit(2);
}
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const key = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
const AUDIENCE = 'urn:kafka';
const TOKEN_TTL_S = Number(process.env.OIDC_TOKEN_TTL_S || 300);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [key] },
  scopes: ['kafka'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => AUDIENCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'kafka',
        audience: AUDIENCE,
        accessTokenTTL: TOKEN_TTL_S,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready on ${port}`));
