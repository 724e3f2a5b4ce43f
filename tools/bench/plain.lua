-- wrk script for the trivial endpoint: GET, same result line as sequence.lua.
function done(summary, latency, requests)
   io.write(string.format(
      "LEDGERCA_RESULT {\"requests\":%d,\"duration_us\":%d,\"errors_status\":%d," ..
      "\"errors_connect\":%d,\"errors_read\":%d,\"errors_write\":%d,\"errors_timeout\":%d," ..
      "\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d}\n",
      summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout,
      latency:percentile(50), latency:percentile(99), latency.max))
end
