#!/usr/bin/env node
// Verify JWTs the way a Node service does with panva's jose: createRemoteJWKSet + jwtVerify
// (README.md). The same interface and output as verify_pyjwt.py:
//
//   node verify_jose.mjs (--jwks-url URL | --issuer-url URL) --issuer ISS [--audience AUD]
//                        [--algorithms ES256,EdDSA] [--cooldown-ms MS] [--stream] [TOKEN ...]
//
// One JSON line a token: {"ok": true, "claims", "header", "kid"} or
// {"ok": false, "kind": "token"|"key"|"fetch", "error"}. Exit 0 all verified, 1 some refused,
// 2 could not run (discovery or JWKS unreachable), never a verdict on a token.
import { createInterface } from 'node:readline';
import { createRemoteJWKSet, jwtVerify, decodeProtectedHeader } from 'jose';

function parseArgs(argv) {
  const args = { algorithms: ['ES256', 'EdDSA', 'RS256'], tokens: [], stream: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--jwks-url': args.jwksUrl = value(); break;
      case '--issuer-url': args.issuerUrl = value(); break;
      case '--issuer': args.issuer = value(); break;
      case '--audience': args.audience = value(); break;
      case '--algorithms': args.algorithms = value().split(',').filter(Boolean); break;
      case '--cooldown-ms': args.cooldownMs = Number(value()); break;
      case '--stream': args.stream = true; break;
      default:
        if (a.startsWith('--')) throw new Error(`unknown flag ${a}`);
        args.tokens.push(a);
    }
  }
  if (!!args.jwksUrl === !!args.issuerUrl) throw new Error('give exactly one of --jwks-url, --issuer-url');
  if (!args.issuer) throw new Error('--issuer is required');
  return args;
}

function fatal(message) {
  console.log(JSON.stringify({ ok: false, fatal: true, kind: 'fetch', error: message }));
  process.exit(2);
}

async function discover(issuerUrl, expectedIssuer) {
  const url = issuerUrl.replace(/\/+$/, '') + '/.well-known/openid-configuration';
  const response = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10000) });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  const config = await response.json();
  if (config.issuer !== expectedIssuer) {
    throw new Error(`discovery issuer ${JSON.stringify(config.issuer)} != expected ${JSON.stringify(expectedIssuer)}`);
  }
  if (typeof config.jwks_uri !== 'string') throw new Error('discovery document has no jwks_uri');
  return config.jwks_uri;
}

function classify(err) {
  const code = err && err.code;
  if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return 'key';
  if (code === 'ERR_JWKS_TIMEOUT') return 'fetch';
  if (!code && err instanceof TypeError && /fetch failed/.test(err.message)) return 'fetch';
  return 'token';
}

async function verify(jwks, token, args) {
  try {
    const options = { issuer: args.issuer, algorithms: args.algorithms, requiredClaims: ['exp', 'sub'] };
    if (args.audience) options.audience = args.audience;
    const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
    return { ok: true, claims: payload, header: protectedHeader, kid: protectedHeader.kid ?? null };
  } catch (err) {
    const name = (err && (err.code || err.name)) || 'Error';
    return { ok: false, kind: classify(err), error: `${name}: ${err && err.message}` };
  }
}

async function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`verify_jose.mjs: ${err.message}`);
    process.exit(2);
  }
  let jwksUrl = args.jwksUrl;
  if (!jwksUrl) {
    try {
      jwksUrl = await discover(args.issuerUrl, args.issuer);
    } catch (err) {
      fatal(`discovery failed: ${err.message}${err.cause ? ` (${err.cause.message || err.cause})` : ''}`);
    }
  }
  const options = { timeoutDuration: 10000 };
  if (args.cooldownMs !== undefined) options.cooldownDuration = args.cooldownMs;
  const jwks = createRemoteJWKSet(new URL(jwksUrl), options);
  try {
    await jwks.reload(); // reachable at all? (a refusal must never be an unreachable JWKS)
  } catch (err) {
    if (classify(err) === 'fetch') fatal(`JWKS ${jwksUrl} unreachable: ${err.message}`);
    console.error(JSON.stringify({ note: `JWKS ${jwksUrl} not usable: ${err.code || err.name}: ${err.message}` }));
  }

  let status = 0;
  const handle = async (token) => {
    token = token.trim();
    if (!token) return;
    const result = await verify(jwks, token, args);
    if (!result.ok) status = 1;
    // header of refused tokens too, when it decodes, for the report
    if (!result.ok) {
      try { result.header = decodeProtectedHeader(token); } catch { /* not a JWS */ }
    }
    process.stdout.write(JSON.stringify(result) + '\n');
  };
  if (args.tokens.length) {
    for (const t of args.tokens) await handle(t);
  } else {
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    for await (const line of rl) await handle(line);
  }
  process.exitCode = status;
}

main();
