#!/usr/bin/env node
// Drive the official particle-api-js@12.0.3 against a Cyan server and print what the client made of the reply.
//
//   node apijs.js <baseUrl> <method> [<json args>]      one call, e.g.  node apijs.js http://127.0.0.1:8000 getProduct '{"product":"trackers"}'
//   node apijs.js <baseUrl> -                           a batch: a JSON array of {method, args, auth?} on stdin
//
// The constructor options come from the environment, as an application would configure the library:
//   PARTICLE_AUTH           default token (setDefaultAuth); sent as "Authorization: Bearer ..." on every call
//   PARTICLE_CLIENT_ID      OAuth client id     (api-js default: particle-api)
//   PARTICLE_CLIENT_SECRET  OAuth client secret (api-js default: particle-api)
//
// Output (stdout, one JSON document): for one call a result object, for a batch an array of them.
//   success: {"ok": true,  "statusCode": 200, "body": {...}}
//   failure: {"ok": false, "statusCode": 401, "message": "...", "errorDescription": "...",
//             "shortErrorDescription": "...", "body": {...parsed error JSON...} | null, "bodyParseError": null | "SyntaxError: ..."}
// The exit code is 0 whenever the call was made (a rejected promise is a result, not a crash); 2 for usage errors.
'use strict';

const path = require('path');
const Particle = require('particle-api-js');
// The package's "exports" hide package.json from require(); read it from disk next to the resolved entry point.
const pkg = require(path.join(path.dirname(require.resolve('particle-api-js')), '..', '..', 'package.json'));

function usage(msg) {
	process.stderr.write(`${msg}\nusage: node apijs.js <baseUrl> <method>|- [<json args>]\n`);
	process.exit(2);
}

function makeClient(baseUrl) {
	const options = { baseUrl };
	if (process.env.PARTICLE_CLIENT_ID) {
		options.clientId = process.env.PARTICLE_CLIENT_ID;
	}
	if (process.env.PARTICLE_CLIENT_SECRET) {
		options.clientSecret = process.env.PARTICLE_CLIENT_SECRET;
	}
	if (process.env.PARTICLE_AUTH) {
		options.auth = process.env.PARTICLE_AUTH;
	}
	return new Particle(options);
}

function describeFailure(err) {
	// api-js rejects with an Error carrying statusCode, errorDescription, shortErrorDescription and body (the parsed
	// error JSON, or the SyntaxError when the server's error body was not JSON). body.response is the fetch Response.
	const out = {
		ok: false,
		statusCode: err && err.statusCode !== undefined ? err.statusCode : null,
		message: err && err.message ? String(err.message) : String(err),
		errorDescription: err && err.errorDescription !== undefined ? err.errorDescription : null,
		shortErrorDescription: err && err.shortErrorDescription !== undefined ? err.shortErrorDescription : null,
		body: null,
		bodyParseError: null,
	};
	const body = err && err.body;
	if (body instanceof Error) {
		out.bodyParseError = `${body.name}: ${body.message}`;
	} else if (body && typeof body === 'object') {
		const copy = {};
		for (const [key, value] of Object.entries(body)) {
			if (key !== 'response') {
				copy[key] = value;
			}
		}
		out.body = copy;
	}
	return out;
}

async function callOne(particle, method, args) {
	if (typeof particle[method] !== 'function') {
		return { ok: false, statusCode: null, message: `particle-api-js ${pkg.version} has no method ${method}`,
			errorDescription: null, shortErrorDescription: null, body: null, bodyParseError: null };
	}
	try {
		const res = await particle[method](args || {});
		if (Buffer.isBuffer(res)) {
			return { ok: true, statusCode: 200, buffer: res.toString('base64') };
		}
		return { ok: true, statusCode: res.statusCode, body: res.body };
	} catch (err) {
		return describeFailure(err);
	}
}

function readStdin() {
	return new Promise((resolve, reject) => {
		let data = '';
		process.stdin.setEncoding('utf8');
		process.stdin.on('data', (chunk) => { data += chunk; });
		process.stdin.on('end', () => resolve(data));
		process.stdin.on('error', reject);
	});
}

async function main() {
	const [baseUrl, method, rawArgs] = process.argv.slice(2);
	if (!baseUrl || !method) {
		usage('missing arguments');
	}
	const particle = makeClient(baseUrl);
	if (method === '-') {
		let steps;
		try {
			steps = JSON.parse(await readStdin());
		} catch (e) {
			usage(`stdin is not a JSON array of calls: ${e.message}`);
		}
		const results = [];
		for (const step of steps) {
			const args = Object.assign({}, step.args || {});
			if (step.auth !== undefined) {
				args.auth = step.auth;
			}
			results.push(await callOne(particle, step.method, args));
		}
		process.stdout.write(JSON.stringify(results) + '\n');
		return;
	}
	let args = {};
	if (rawArgs) {
		try {
			args = JSON.parse(rawArgs);
		} catch (e) {
			usage(`args are not JSON: ${e.message}`);
		}
	}
	process.stdout.write(JSON.stringify(await callOne(particle, method, args)) + '\n');
}

main().catch((err) => {
	process.stderr.write(`apijs.js crashed: ${err && err.stack ? err.stack : err}\n`);
	process.exit(1);
});
