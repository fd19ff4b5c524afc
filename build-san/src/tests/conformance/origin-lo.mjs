// origin-lo.mjs: the cache-tests origin (server/server.mjs of the http-cache-tests package) bound
// to 127.0.0.1 only. server.mjs calls listen(port) without a host, which would be every address
// of the machine; we patch Server.listen before importing it so that a bare port gets a host.
// Usage: CT_DIR=PKG npm_config_protocol=http npm_config_port=P npm_config_pidfile=F node origin-lo.mjs
import http from 'http'
import path from 'path'

const origListen = http.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  const a0 = args[0]
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    args.splice(1, 0, '127.0.0.1')
  } else if (a0 && typeof a0 === 'object' && !('path' in a0)) {
    args[0] = { ...a0, host: '127.0.0.1' }
  }
  return origListen.apply(this, args)
}

if (!process.env.CT_DIR) {
  console.error('origin-lo.mjs: set CT_DIR to the http-cache-tests package folder')
  process.exit(2)
}
await import(path.join(process.env.CT_DIR, 'server', 'server.mjs'))
