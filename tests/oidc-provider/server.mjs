// A real OpenID Provider (panva/node-oidc-provider) for sluice-identity's
// integration tests.
//
// Owns: one provider on 127.0.0.1, its freshly generated signing keys, and a
// few test hooks (a JWKS request counter, key rotation on a stdin command).
// Does not: persist anything, listen on anything but 127.0.0.1, or outlive the
// test that started it (it exits when stdin reaches EOF or on SIGTERM).
//
// Usage: node server.mjs [--port N]   (N = 0 picks a free port; the default)
//
// After listening it prints exactly one JSON line on stdout:
//   {"issuer":"http://127.0.0.1:PORT","kid":"...","private_jwk_file":"...",
//    "private_pem_file":"...","public_pem_file":"...","stats_url":"..."}
// Everything else it says goes to stderr.
//
// Clients (grant type client_credentials, client_secret_basic):
//   sluice-test     / sluice-test-secret      -> groups ["analysts"]
//   sluice-test-ops / sluice-test-ops-secret  -> groups ["ops", "analysts", "ops"]
// Resource indicators (RFC 8707; `resource` must be an absolute URI):
//   urn:sluice         -> JWT access token, aud "sluice", RS256 (the default)
//   urn:sluice:es256   -> aud "sluice", ES256
//   urn:sluice:eddsa   -> aud "sluice", EdDSA (Ed25519)
//   urn:other          -> aud "other", RS256 (a real token for someone else)
//
// stdin commands, one per line:
//   rotate  -> a new RSA key becomes the signing key (the old one stays in the
//              JWKS after it); prints {"rotated":true,"kid":..,...} on stdout.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import process from 'node:process';

// oidc-provider and its dependencies may log; stdout is reserved for our JSON lines.
for (const level of ['log', 'info', 'warn', 'debug']) {
  console[level] = (...args) => console.error(...args);
}

const { Provider } = await import('oidc-provider');

function parsePort(argv) {
  const at = argv.indexOf('--port');
  if (at === -1) return 0;
  const port = Number(argv[at + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port needs a number between 0 and 65535, got ${argv[at + 1]}`);
    process.exit(2);
  }
  return port;
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-oidc-'));
let cleaned = false;
function cleanup() {
  if (cleaned) return;
  cleaned = true;
  rmSync(dir, { recursive: true, force: true });
}

function newKid(prefix) {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** A fresh RSA signing key: its private JWK, and PEMs written next to it. */
function newRsaKey(generation) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = newKid('rsa');
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const files = {
    private_jwk_file: join(dir, `rsa-${generation}.private.jwk.json`),
    private_pem_file: join(dir, `rsa-${generation}.private.pem`),
    public_pem_file: join(dir, `rsa-${generation}.public.pem`),
  };
  writeFileSync(files.private_jwk_file, JSON.stringify(jwk), { mode: 0o600 });
  writeFileSync(files.private_pem_file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  writeFileSync(files.public_pem_file, publicKey.export({ format: 'pem', type: 'spki' }));
  return { kid, jwk, files };
}

function newJwk(type, options, prefix, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: newKid(prefix), alg, use: 'sig' };
}

const ecJwk = newJwk('ec', { namedCurve: 'P-256' }, 'ec', 'ES256');
const edJwk = newJwk('ed25519', undefined, 'ed', 'EdDSA');

const GROUPS = {
  'sluice-test': ['analysts'],
  'sluice-test-ops': ['ops', 'analysts', 'ops'],
};

const RESOURCE_SERVERS = {
  'urn:sluice': { audience: 'sluice' },
  'urn:sluice:es256': { audience: 'sluice', jwt: { sign: { alg: 'ES256' } } },
  'urn:sluice:eddsa': { audience: 'sluice', jwt: { sign: { alg: 'EdDSA' } } },
  'urn:other': { audience: 'other' },
};

function client(id) {
  return {
    client_id: id,
    client_secret: `${id}-secret`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  };
}

function newProvider(issuer, rsaKeys) {
  const provider = new Provider(issuer, {
    clients: [client('sluice-test'), client('sluice-test-ops')],
    // The first RSA key signs RS256 tokens; the others are only published.
    jwks: { keys: [...rsaKeys.map((k) => k.jwk), ecJwk, edJwk] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:sluice',
        useGrantedResource: () => true,
        getResourceServerInfo(_ctx, resourceIndicator) {
          const server = RESOURCE_SERVERS[resourceIndicator];
          if (!server) throw new Provider.errors.InvalidTarget();
          return { scope: 'sluice', accessTokenTTL: 300, accessTokenFormat: 'jwt', ...server };
        },
      },
    },
    extraTokenClaims(_ctx, token) {
      const groups = GROUPS[token.clientId];
      return groups ? { groups } : undefined;
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider server_error:', err));
  return provider;
}

let jwksRequests = 0;
let handler = null;

const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/__sluice_test/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jwks_requests: jwksRequests }));
    return;
  }
  if (path === '/jwks') jwksRequests += 1;
  if (!handler) {
    res.writeHead(503).end();
    return;
  }
  handler(req, res);
});

server.listen(parsePort(process.argv), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  let generation = 0;
  let rsaKeys = [newRsaKey(generation)];
  handler = newProvider(issuer, rsaKeys).callback();

  const announce = (extra) => {
    const [current] = rsaKeys;
    process.stdout.write(`${JSON.stringify({
      ...extra,
      issuer,
      kid: current.kid,
      ...current.files,
      stats_url: `${issuer}/__sluice_test/stats`,
    })}\n`);
  };
  announce({});

  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === 'rotate') {
      generation += 1;
      rsaKeys = [newRsaKey(generation), ...rsaKeys];
      handler = newProvider(issuer, rsaKeys).callback();
      announce({ rotated: true });
    } else if (line.trim() !== '') {
      console.error(`unknown command: ${line}`);
    }
  });
  // The test that started us is gone (or done): do not linger.
  lines.on('close', () => shutdown(0));
});

function shutdown(code) {
  cleanup();
  server.close();
  server.closeAllConnections?.();
  process.exit(code);
}

process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('exit', cleanup);
