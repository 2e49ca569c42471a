#!/usr/bin/env node
// tests/clients/apijs.js, plus file uploads: JSON cannot carry a Buffer, so a `files` entry (what api-js's named
// methods such as addDeviceToProduct({file}) build) written as {"$buffer": "<utf-8 text>"} or
// {"$base64": "<base64>"} becomes a Buffer just before api-js encodes the multipart body.
//
//   node apijs-devices.js <baseUrl> addDeviceToProduct '{"product":"p","file":{"$buffer":"id1\nid2\n"}}'
//
// Everything else (arguments, environment, output format) is exactly apijs.js, which this requires unchanged:
// the patch is applied to the same particle-api-js module instance apijs.js then loads.
'use strict';

const Particle = require('particle-api-js');

function toBuffer(value) {
	if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
		if (typeof value.$buffer === 'string') {
			return Buffer.from(value.$buffer, 'utf8');
		}
		if (typeof value.$base64 === 'string') {
			return Buffer.from(value.$base64, 'base64');
		}
	}
	return value;
}

const originalRequest = Particle.prototype.request;
Particle.prototype.request = function request(args) {
	if (args && args.files) {
		const files = {};
		for (const [key, value] of Object.entries(args.files)) {
			files[key] = toBuffer(value);
		}
		args = Object.assign({}, args, { files });
	}
	return originalRequest.call(this, args);
};

require('./apijs.js');
