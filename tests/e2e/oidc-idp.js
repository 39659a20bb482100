// A real, certified OpenID provider for the tests: panva's `oidc-provider` on 127.0.0.1 with
// a random port, one confidential client (osvdi), PKCE required, RP-initiated logout, its
// development login and consent pages, and an in-memory account store whose claims a test
// changes between logins (groups, eduPerson entitlements).

import { createServer } from "node:http";
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

export const CLIENT_ID = "osvdi";
export const CLIENT_SECRET = "osvdi-e2e-client-secret";

/** A signing key made for this run (RS256). */
function signingKey() {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return { ...privateKey.export({ format: "jwk" }), kid: "e2e-1", alg: "RS256", use: "sig" };
}

/**
 * Starts the provider. `publicUrl` is osvdi's address, `provider` its id for this provider
 * in osvdi's config (the redirect URI is `{publicUrl}/auth/oidc/{provider}/callback`).
 * Returns `{ issuer, setClaims(login, claims), stop() }`.
 */
export async function startIdp({ publicUrl, provider = "uni" }) {
  const accounts = new Map();
  const server = createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const oidc = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        client_name: "osvdi",
        redirect_uris: [`${publicUrl}/auth/oidc/${provider}/callback`],
        post_logout_redirect_uris: [`${publicUrl}/`],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [signingKey()] },
    cookies: { keys: ["osvdi-e2e-cookie-key"] },
    pkce: { required: () => true },
    scopes: ["openid", "profile", "email", "groups", "eduperson"],
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email", "email_verified"],
      groups: ["groups"],
      eduperson: ["eduperson_entitlement", "eduperson_affiliation"],
    },
    features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
    // Whoever logs in on the development login page is the account of that name.
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, ...(accounts.get(id) || {}) }),
    }),
    // Pages without third-party fonts: the browser reaches nothing but loopback.
    renderError: async (ctx, out) => {
      ctx.type = "html";
      ctx.body = `<!doctype html><title>Error</title><h1>${out.error}</h1><p>${out.error_description || ""}</p>`;
    },
  });
  // The built-in pages @import a web font; serve them without it.
  oidc.use(async (ctx, next) => {
    await next();
    if (typeof ctx.body === "string" && ctx.body.includes("fonts.googleapis.com")) {
      ctx.body = ctx.body.replace(/@import url\([^)]*\);?/g, "");
    }
  });
  server.on("request", oidc.callback());
  return {
    issuer,
    setClaims(login, claims) {
      accounts.set(login, claims);
    },
    stop() {
      return new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      });
    },
  };
}
