'use strict';
// The handler module of the threaded addon contestant (addon-threads.js): each thread of
// createServer({ threads, handler }) loads it; its export is the connection listener.
module.exports = require('./common').echo;
