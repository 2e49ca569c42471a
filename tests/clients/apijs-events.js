#!/usr/bin/env node
// Hold one particle-api-js@12.0.3 event stream open against a Cyan server and report what the client sees.
//
//   node apijs-events.js <baseUrl> <json args for getEventStream> <events wanted> <seconds at most>
//
// The token comes from PARTICLE_AUTH. Output: one JSON document per line, as things happen:
//   {"type":"open"}                              getEventStream resolved (the response headers arrived)
//   {"type":"event","event":{...}}               an "event" the client emitted (name, data, coreid, ...)
//   {"type":"disconnect"} / {"type":"reconnect"} / {"type":"reconnect-success"} / {"type":"reconnect-error"}
//   {"type":"failed","statusCode":401,"errorDescription":"..."}   getEventStream rejected
//   {"type":"done","events":n}                   the wanted number arrived, or the time ran out
'use strict';

const Particle = require('particle-api-js');

const [baseUrl, rawArgs, wanted, seconds] = process.argv.slice(2);
if (!baseUrl || !rawArgs) {
	process.stderr.write('usage: node apijs-events.js <baseUrl> <json args> <events wanted> <seconds at most>\n');
	process.exit(2);
}
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n');
const particle = new Particle({ baseUrl });
const args = Object.assign({ auth: process.env.PARTICLE_AUTH }, JSON.parse(rawArgs));
let seen = 0;
let stream = null;

function finish() {
	out({ type: 'done', events: seen });
	if (stream) {
		stream.abort();
	}
	process.exit(0);
}

setTimeout(finish, Number(seconds || 30) * 1000);

particle.getEventStream(args).then((s) => {
	stream = s;
	out({ type: 'open' });
	for (const name of ['disconnect', 'reconnect', 'reconnect-success', 'reconnect-error']) {
		s.on(name, () => out({ type: name }));
	}
	s.on('event', (event) => {
		seen += 1;
		out({ type: 'event', event });
		if (seen >= Number(wanted || 1)) {
			finish();
		}
	});
}, (err) => {
	out({ type: 'failed', statusCode: err.statusCode, errorDescription: err.errorDescription || String(err) });
	process.exit(0);
});
