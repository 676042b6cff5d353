#!/usr/bin/env node
// An independent OCPP 1.6J / 2.0.1 / 2.1 CSMS for the tests, built on `ocpp-rpc` in strict mode.
//
// Every frame the station sends (its CALLs and the CALLRESULTs it returns to our
// CALLs) is schema-checked by an implementation we did not write. The process
// talks to the test over stdio, one JSON object per line:
//
//   stdout  {"event":"listening","port":N}
//           {"event":"client","identity":...,"protocol":...}
//           {"event":"call","action":...,"params":...,"messageId":...}      a CALL from the station
//           {"event":"callResult","action":...,"result":...}               the station's CALLRESULT
//           {"event":"callErrorResponse","action":...,"code":...}          the station's CALLERROR
//           {"event":"result","ref":...,"action":...,"result":...}         answer to a stdin command
//           {"event":"callError","ref":...,"action":...,"code":...}        ... or its failure
//           {"event":"strictValidationFailure",...}                        a schema violation
//           {"event":"badMessage",...}, {"event":"close",...}, {"event":"error",...}
//   stdin   {"cmd":"call","action":"RemoteStopTransaction","params":{...},"ref":"r1"}
//           {"cmd":"drop"}                                                 the connection is lost
//           {"cmd":"quit"}
//
// Usage: node strict_csms.js [port] [heartbeatInterval] [protocols]
//   (or STRICT_CSMS_PORT / STRICT_CSMS_HEARTBEAT_INTERVAL / STRICT_CSMS_PROTOCOLS; defaults 0, 300
//   and "ocpp1.6"). protocols: the subprotocols served, comma-separated, preferred first
//   ("ocpp2.0.1", "ocpp2.0.1,ocpp1.6"); each connection is answered in the one it selected.
// TLS (wss://): STRICT_CSMS_TLS_CERT and STRICT_CSMS_TLS_KEY (PEM files) serve TLS; with
//   STRICT_CSMS_TLS_CLIENT_CA (PEM) a client certificate issued by it is demanded (security profile 3).
// STRICT_CSMS_BOOT_PENDING=N: the first N BootNotifications are answered Pending (interval 600 s), the
//   later ones Accepted.
// STRICT_CSMS_REFUSED_TOKENS=A,B: 2.0.1 TransactionEvents naming these idTokens are answered Invalid.
'use strict';

const readline = require('readline');
const { RPCServer, createRPCError, createValidator } = require('ocpp-rpc');

const port = Number(process.argv[2] ?? process.env.STRICT_CSMS_PORT ?? 0);
const heartbeatInterval = Number(process.argv[3] ?? process.env.STRICT_CSMS_HEARTBEAT_INTERVAL ?? 300);
const protocols = String(process.argv[4] ?? process.env.STRICT_CSMS_PROTOCOLS ?? 'ocpp1.6')
    .split(',').map((p) => p.trim()).filter(Boolean);

function emit(event, fields = {}) {
    process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

function describeError(error) {
    if (!error) return null;
    return {
        name: error.name,
        message: error.message,
        code: error.rpcErrorCode ?? null,
        details: error.details ?? null,
    };
}

function now() {
    return new Date().toISOString();
}

let nextTransactionId = 1;
let pendingBoots = Number(process.env.STRICT_CSMS_BOOT_PENDING ?? 0);
// idTokens a 2.0.1 TransactionEvent is answered Invalid for (Authorize still accepts them).
const refusedTokens = new Set(String(process.env.STRICT_CSMS_REFUSED_TOKENS ?? '').split(',').filter(Boolean));

// The answer to a BootNotification: Pending while pendingBoots last, then Accepted.
function bootAnswer() {
    if (pendingBoots > 0) {
        pendingBoots -= 1;
        return { status: 'Pending', currentTime: now(), interval: 600 };
    }
    return { status: 'Accepted', currentTime: now(), interval: heartbeatInterval };
}
let current = null; // the most recently connected client

// ocpp-rpc 2.2.1 ships the official OCPP 2.1 schemas under ids ("urn:BootNotificationRequest") other
// than those its validator looks up ("urn:BootNotification.req"): the same schemas, under the ids it uses.
const ocpp21 = createValidator('ocpp2.1', require('ocpp-rpc/lib/schemas/ocpp2_1.json').map((schema) => ({
    ...schema,
    $id: schema.$id.replace(/Request$/, '.req').replace(/Response$/, '.conf'),
})));

const server = new RPCServer({
    protocols,
    strictMode: true,
    strictModeValidators: [ocpp21],
    respondWithDetailedErrors: true,
    callTimeoutMs: 10000,
});

server.on('error', (error) => emit('error', { where: 'server', error: describeError(error) }));
server.on('upgradeAborted', ({ error }) => emit('upgradeAborted', { error: describeError(error) }));

server.on('client', (client) => {
    const identity = client.identity; // ocpp-rpc takes the last path segment
    current = client;
    emit('client', { identity, protocol: client.protocol, path: client.handshake?.endpoint ?? null,
        clientCertificate: peerCertificateName(client) });

    // Method of each CALL we sent, by message id, to name the station's responses.
    const outboundMethods = new Map();

    client.on('call', ({ outbound, payload }) => {
        const [, messageId, action, params] = payload;
        if (outbound) {
            outboundMethods.set(messageId, action);
        } else {
            emit('call', { identity, messageId, action, params });
        }
    });

    client.on('response', ({ outbound, payload }) => {
        if (outbound) return; // our own answers to the station's CALLs
        const [type, messageId, ...rest] = payload;
        const action = outboundMethods.get(messageId) ?? null;
        outboundMethods.delete(messageId);
        if (type === 3) {
            emit('callResult', { identity, messageId, action, result: rest[0] });
        } else {
            const [code, description, details] = rest;
            emit('callErrorResponse', { identity, messageId, action, code, description, details });
        }
    });

    client.on('strictValidationFailure', (failure) => {
        emit('strictValidationFailure', {
            identity,
            messageId: failure.messageId,
            action: failure.method,
            params: failure.params,
            result: failure.result,
            outbound: failure.outbound,
            isCall: failure.isCall,
            error: describeError(failure.error),
        });
    });

    client.on('badMessage', ({ buffer, error, response }) => {
        emit('badMessage', {
            identity,
            message: buffer.toString('utf8'),
            error: describeError(error),
            response,
        });
    });

    client.on('socketError', (error) => emit('error', { where: 'socket', identity, error: describeError(error) }));
    client.on('close', ({ code, reason }) => {
        emit('close', { identity, code, reason: reason?.toString?.() ?? reason });
        if (current === client) current = null;
    });

    if (client.protocol === 'ocpp2.0.1' || client.protocol === 'ocpp2.1') {
        handle201(client);
        return;
    }
    client.handle('BootNotification', bootAnswer);
    client.handle('Heartbeat', () => ({ currentTime: now() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('Authorize', () => ({ idTagInfo: { status: 'Accepted' } }));
    client.handle('StartTransaction', () => ({
        transactionId: nextTransactionId++,
        idTagInfo: { status: 'Accepted' },
    }));
    client.handle('MeterValues', () => ({}));
    client.handle('StopTransaction', () => ({ idTagInfo: { status: 'Accepted' } }));
    client.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    client.handle('SignCertificate', () => ({ status: 'Accepted' }));
    // Notifications of the 1.6 firmware/diagnostics and security features: acknowledged.
    for (const action of ['DiagnosticsStatusNotification', 'FirmwareStatusNotification',
        'SecurityEventNotification', 'LogStatusNotification', 'SignedFirmwareStatusNotification']) {
        client.handle(action, () => ({}));
    }
    client.handle(({ method }) => {
        throw createRPCError('NotImplemented', `strict_csms does not handle ${method}`);
    });
});

// The OCPP 2.0.1 CSMS (and 2.1, which extends it): everything accepted; an idToken in a
// TransactionEvent gets an idTokenInfo; a 2.1 PullDynamicScheduleUpdate gets the limit in
// STRICT_CSMS_DYNAMIC_LIMIT (default 10).
function handle201(client) {
    client.handle('PullDynamicScheduleUpdate', () => ({
        status: 'Accepted', scheduleUpdate: { limit: Number(process.env.STRICT_CSMS_DYNAMIC_LIMIT ?? 10) } }));
    client.handle('BootNotification', bootAnswer);
    client.handle('Heartbeat', () => ({ currentTime: now() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('Authorize', () => ({ idTokenInfo: { status: 'Accepted' } }));
    client.handle('TransactionEvent', ({ params }) => (
        params.idToken ? { idTokenInfo: { status: refusedTokens.has(params.idToken.idToken) ? 'Invalid' : 'Accepted' } }
            : {}));
    client.handle('DataTransfer', () => ({ status: 'UnknownVendorId' }));
    client.handle('SignCertificate', () => ({ status: 'Accepted' }));
    for (const action of ['MeterValues', 'NotifyEvent', 'NotifyReport', 'SecurityEventNotification',
        'FirmwareStatusNotification', 'LogStatusNotification']) {
        client.handle(action, () => ({}));
    }
    for (const action of ['ReportChargingProfiles', 'ReservationStatusUpdate', 'NotifyDisplayMessages',
        'NotifyMonitoringReport']) {
        client.handle(action, () => ({}));
    }
    client.handle(({ method }) => {
        throw createRPCError('NotImplemented', `strict_csms does not handle ${method}`);
    });
}

async function runCommand(command) {
    if (command.cmd === 'quit') {
        await quit(0);
        return;
    }
    if (command.cmd === 'raw') {
        // A frame as it is (not OCPP, say): what a broken or hostile CSMS might send.
        if (current) current.sendRaw(command.text);
        emit('sentRaw', { text: command.text });
        return;
    }
    if (command.cmd === 'drop') {
        // The connection lost (no closing handshake): the station reconnects.
        if (current) current.close({ force: true }).catch(() => {});
        emit('dropped', {});
        return;
    }
    if (command.cmd !== 'call') {
        emit('error', { where: 'stdin', message: `unknown command ${JSON.stringify(command.cmd)}` });
        return;
    }
    const { action, params = {}, ref = null } = command;
    const client = current;
    if (!client) {
        emit('callError', { ref, action, code: null, message: 'no station connected' });
        return;
    }
    try {
        const result = await client.call(action, params);
        emit('result', { ref, action, result });
    } catch (error) {
        emit('callError', { ref, action, code: error.rpcErrorCode ?? null, message: error.message,
            details: error.details ?? null });
    }
}

let quitting = false;
async function quit(code) {
    if (quitting) return;
    quitting = true;
    try {
        await server.close({ code: 1001, reason: 'strict_csms quits', awaitPending: false, force: true });
    } catch (error) {
        emit('error', { where: 'close', error: describeError(error) });
    }
    emit('exit', { code });
    process.exit(code);
}

const input = readline.createInterface({ input: process.stdin });
input.on('line', (line) => {
    if (!line.trim()) return;
    let command;
    try {
        command = JSON.parse(line);
    } catch (error) {
        emit('error', { where: 'stdin', message: `not JSON: ${line}` });
        return;
    }
    runCommand(command).catch((error) => emit('error', { where: 'command', error: describeError(error) }));
});
input.on('close', () => quit(0));

process.stdout.on('error', () => process.exit(0)); // the test went away
process.on('SIGTERM', () => quit(0));

// The subject CN of the client certificate the station presented over TLS, or null.
function peerCertificateName(client) {
    const socket = client.handshake?.request?.socket;
    const certificate = socket?.getPeerCertificate ? socket.getPeerCertificate() : null;
    return certificate?.subject?.CN ?? null;
}

// Plain ws:// through ocpp-rpc's own listener, or wss:// through an https server handing it the upgrades.
function listen() {
    const certFile = process.env.STRICT_CSMS_TLS_CERT;
    if (!certFile) return server.listen(port, '127.0.0.1');
    const fs = require('fs');
    const clientCa = process.env.STRICT_CSMS_TLS_CLIENT_CA;
    const httpsServer = require('https').createServer({
        cert: fs.readFileSync(certFile),
        key: fs.readFileSync(process.env.STRICT_CSMS_TLS_KEY),
        ca: clientCa ? fs.readFileSync(clientCa) : undefined,
        requestCert: Boolean(clientCa),
        rejectUnauthorized: Boolean(clientCa),
        minVersion: 'TLSv1.2',
    });
    httpsServer.on('upgrade', server.handleUpgrade);
    httpsServer.on('tlsClientError', (error) => emit('tlsClientError', { error: describeError(error) }));
    return new Promise((resolve, reject) => {
        httpsServer.once('error', reject);
        httpsServer.listen(port, '127.0.0.1', () => resolve(httpsServer));
    });
}

listen().then((httpServer) => {
    emit('listening', { port: httpServer.address().port, heartbeatInterval, protocols });
}).catch((error) => {
    emit('error', { where: 'listen', error: describeError(error) });
    process.exit(1);
});
