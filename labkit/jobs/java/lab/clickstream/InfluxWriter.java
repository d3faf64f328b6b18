package lab.clickstream;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.Serializable;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.GZIPOutputStream;

import org.apache.flink.api.common.eventtime.Watermark;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.RowData;
import org.apache.flink.types.RowKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes rows (measurement, tags JSON, fields JSON, ts ms) to InfluxDB 2 as line protocol, in gzipped batches.
 *
 * <p>A window's point is identified by measurement, tags and the window end, so a replay after a failover
 * overwrites instead of double counting. The rules, the Python writer's before it:
 * <ul>
 *   <li>Buffered points are written when a watermark passes (the windows it fired came just before it) at most
 *       every 100 ms, within 100 ms otherwise, when a batch is full, and before each checkpoint ({@link #flush}):
 *       a checkpoint completes only after everything before its barrier is in InfluxDB, so no window is lost.</li>
 *   <li>InfluxDB down, restarting or overloaded (connection errors, 5xx, 429): wait (0.5 s doubling to 5 s) and
 *       try again, without limit. The blocked writer is back pressure; the job's checkpoints tolerate the wait.</li>
 *   <li>A batch too large (413) is split in halves.</li>
 *   <li>Points refused for what they hold (400, 422: a field of another type than the stored one, a time beyond
 *       the bucket's retention): InfluxDB wrote the others, a retry would be refused again, and failing the job
 *       would restart it into the same refusal forever. The refusal is recorded as a point of its own
 *       ({@code sink_rejections}, per measurement and stream, stamped now), which {@code labkit verify} and
 *       {@code labkit status} report.</li>
 *   <li>A rejected request (401, 403, 404: token, bucket) fails the job with InfluxDB's message.</li>
 * </ul>
 */
public class InfluxWriter implements SinkWriter<RowData> {
    private static final Logger LOG = LoggerFactory.getLogger(InfluxWriter.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    // what waits for a watermark is written within this; also the shortest time between two watermark writes, so
    // a backlog (a watermark every 20 ms) does not post a tiny batch per watermark
    private static final long FLUSH_EVERY_MS = 100;
    private static final long MAX_BACKOFF_MS = 5000;

    /** The connector's options, as the table's WITH clause gave them. */
    public static final class Options implements Serializable {
        private static final long serialVersionUID = 1L;
        final String url, org, bucket, tokenFile, tokenEnv;
        final int batchSize;

        public Options(String url, String org, String bucket, String tokenFile, String tokenEnv, int batchSize) {
            this.url = url.replaceAll("/+$", "");
            this.org = org;
            this.bucket = bucket;
            this.tokenFile = tokenFile;
            this.tokenEnv = tokenEnv;
            this.batchSize = Math.max(1, batchSize);
        }
    }

    /** A line of line protocol, with what a refusal record needs to say about it. */
    record Point(String line, String measurement, String stream, long ts) {}

    private final Options options;
    private final ProcessingTimeService time;
    private HttpClient http;
    private long lastPost;
    private final URI writeUri;
    private final String token;
    private final Counter written, refused, retries;
    private List<Point> pending = new ArrayList<>();

    InfluxWriter(Options options, WriterInitContext context) {
        this.options = options;
        this.time = context.getProcessingTimeService();
        // HTTP/1.1: InfluxDB's API is plain HTTP, and the default would ask every POST for an h2c upgrade
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        this.writeUri = URI.create(options.url + "/api/v2/write?org=" + enc(options.org) + "&bucket="
                + enc(options.bucket) + "&precision=ms");
        this.token = readToken(options);
        this.written = context.metricGroup().counter("influxPointsWritten");
        this.refused = context.metricGroup().counter("influxPointsRefused");
        this.retries = context.metricGroup().counter("influxWriteRetries");
        scheduleFlush();
    }

    private static String readToken(Options o) {
        // the token file wins, as in the Python writer: it is the lab's 0600 file, the env var a container's
        if (!o.tokenFile.isEmpty()) {
            Path p = Path.of(o.tokenFile);
            try {
                if (Files.exists(p)) return Files.readString(p).strip();
            } catch (IOException e) {
                throw new IllegalStateException("cannot read the InfluxDB token file " + o.tokenFile + ": " + e, e);
            }
        }
        String env = o.tokenEnv.isEmpty() ? null : System.getenv(o.tokenEnv);
        return env == null ? "" : env.strip();
    }

    private void scheduleFlush() {
        time.registerTimer(time.getCurrentProcessingTime() + FLUSH_EVERY_MS, t -> {
            flushPending();
            scheduleFlush();
        });
    }

    @Override
    public void write(RowData row, Context context) throws IOException, InterruptedException {
        RowKind kind = row.getRowKind();
        if (kind == RowKind.UPDATE_BEFORE || kind == RowKind.DELETE) return; // an upsert: the +U rewrites the point
        if (row.isNullAt(0) || row.isNullAt(3)) {
            LOG.warn("labkit sink: a row without measurement or time was skipped");
            return;
        }
        Point p = encode(row.getString(0).toString(), row.isNullAt(1) ? "{}" : row.getString(1).toString(),
                row.isNullAt(2) ? "{}" : row.getString(2).toString(), row.getLong(3));
        if (p == null) return; // no field with a value: InfluxDB has nothing to store (the Python client skipped it too)
        pending.add(p);
        if (pending.size() >= options.batchSize) flushPending();
    }

    @Override
    public void writeWatermark(Watermark watermark) throws IOException, InterruptedException {
        if (time.getCurrentProcessingTime() - lastPost >= FLUSH_EVERY_MS) flushPending();
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        flushPending();
    }

    @Override
    public void close() {
        http = null; // Java 17's HttpClient has no close(): unreferenced, its selector thread ends
    }

    private void flushPending() throws IOException, InterruptedException {
        if (pending.isEmpty()) return;
        List<Point> batch = pending;
        pending = new ArrayList<>();
        lastPost = time.getCurrentProcessingTime();
        post(batch);
    }

    private void post(List<Point> batch) throws IOException, InterruptedException {
        long backoff = 500;
        while (true) {
            HttpResponse<String> r;
            try {
                r = http.send(request(batch), HttpResponse.BodyHandlers.ofString());
            } catch (IOException e) {
                LOG.warn("labkit sink: InfluxDB unreachable ({}); retrying in {} ms", e.toString(), backoff);
                backoff = pause(backoff);
                continue;
            }
            int s = r.statusCode();
            if (s / 100 == 2) {
                written.inc(batch.size());
                return;
            }
            if (s == 413 && batch.size() > 1) {
                int half = batch.size() / 2;
                post(batch.subList(0, half));
                post(batch.subList(half, batch.size()));
                return;
            }
            if (s == 400 || s == 422) {
                recordRefusal(batch, s, message(r.body()));
                return;
            }
            if (s == 401 || s == 403 || s == 404 || s == 413) {
                throw new IOException("InfluxDB rejected the write (HTTP " + s + "): " + message(r.body()));
            }
            LOG.warn("labkit sink: InfluxDB answered HTTP {} ({}); retrying in {} ms", s, message(r.body()), backoff);
            backoff = pause(backoff);
        }
    }

    private long pause(long backoff) throws InterruptedException {
        retries.inc();
        Thread.sleep(backoff); // a cancelled task is interrupted here, so a cancel never waits for InfluxDB
        return Math.min(backoff * 2, MAX_BACKOFF_MS);
    }

    private HttpRequest request(List<Point> batch) throws IOException {
        StringBuilder body = new StringBuilder();
        for (Point p : batch) body.append(p.line).append('\n');
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (GZIPOutputStream out = new GZIPOutputStream(gz)) {
            out.write(body.toString().getBytes(StandardCharsets.UTF_8));
        }
        return HttpRequest.newBuilder(writeUri)
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Token " + token)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("Content-Encoding", "gzip")
                .POST(HttpRequest.BodyPublishers.ofByteArray(gz.toByteArray()))
                .build();
    }

    /** Refused points are recorded (never retried, never raised); a refusal that cannot be recorded is logged. */
    private void recordRefusal(List<Point> batch, int status, String message) throws InterruptedException {
        refused.inc(batch.size());
        LOG.warn("labkit sink: InfluxDB refused {} point(s) (HTTP {}): {}", batch.size(), status, message);
        Map<List<String>, long[]> groups = new LinkedHashMap<>(); // (measurement, stream) -> {points, first, last}
        for (Point p : batch) {
            long[] g = groups.computeIfAbsent(List.of(p.measurement, p.stream),
                    k -> new long[] {0, Long.MAX_VALUE, Long.MIN_VALUE});
            g[0]++;
            g[1] = Math.min(g[1], p.ts);
            g[2] = Math.max(g[2], p.ts);
        }
        long now = System.currentTimeMillis();
        List<Point> records = new ArrayList<>();
        String msg = message.length() > 500 ? message.substring(0, 500) : message;
        for (Map.Entry<List<String>, long[]> e : groups.entrySet()) {
            long[] g = e.getValue();
            String line = "sink_rejections"
                    + tag("measurement", e.getKey().get(0)) + tag("status", String.valueOf(status))
                    + tag("stream", e.getKey().get(1))
                    + " points=" + g[0] + "i,first_ms=" + g[1] + "i,last_ms=" + g[2] + "i,message=\""
                    + escape(msg, STRING) + "\" " + now;
            records.add(new Point(line, "sink_rejections", "", now));
        }
        try {
            HttpResponse<String> r = http.send(request(records), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() / 100 != 2) {
                LOG.warn("labkit sink: could not record a refusal (HTTP {}): {}", r.statusCode(), r.body());
            }
        } catch (IOException e) {
            LOG.warn("labkit sink: could not record a refusal (HTTP {}: {}): {}", status, message, e.toString());
        }
    }

    private static String message(String body) {
        try {
            JsonNode m = JSON.readTree(body).get("message");
            if (m != null && m.isTextual()) return m.asText();
        } catch (IOException | RuntimeException e) {
            // not JSON: the body itself is the message
        }
        return body == null ? "" : body;
    }

    // Escapes as the influxdb-client Python library (1.50, client/write/point.py) wrote them, so a point keeps its
    // series key across the change of writer: a backslash in a key or tag value stays as it is (InfluxDB takes it
    // literally), and a tag value ending in one gets a space after it.
    private static final Map<Character, String> MEASUREMENT =
            Map.of(',', "\\,", ' ', "\\ ", '\n', "\\n", '\t', "\\t", '\r', "\\r");
    private static final Map<Character, String> KEY =
            Map.of(',', "\\,", ' ', "\\ ", '=', "\\=", '\n', "\\n", '\t', "\\t", '\r', "\\r");
    private static final Map<Character, String> STRING = Map.of('"', "\\\"", '\\', "\\\\");

    static String escape(String s, Map<Character, String> table) {
        StringBuilder b = new StringBuilder(s.length() + 8);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            String r = table.get(c);
            if (r == null) b.append(c);
            else b.append(r);
        }
        return b.toString();
    }

    /** A tag as the Python client wrote it: left out when its key or value is empty. */
    static String tag(String key, String value) {
        String k = escape(key, KEY), v = escape(value, KEY);
        if (v.endsWith("\\")) v += " ";
        return k.isEmpty() || v.isEmpty() ? "" : "," + k + "=" + v;
    }

    /** Python's str() of a float (its shortest repr), which the Python client wrote for float tags and fields. */
    static String pyFloat(double d) {
        if (d == Math.rint(d) && Math.abs(d) < 1e16) return (long) d + ".0";
        double a = Math.abs(d);
        if (a >= 1e-4 && a < 1e16) return new java.math.BigDecimal(Double.toString(d)).stripTrailingZeros().toPlainString();
        String[] me = Double.toString(d).split("E"); // e.g. 1.0E-5 -> 1e-05, 1.5E16 -> 1.5e+16
        String mant = me[0].endsWith(".0") ? me[0].substring(0, me[0].length() - 2) : me[0];
        int exp = Integer.parseInt(me[1]);
        return mant + "e" + (exp < 0 ? "-" : "+") + String.format("%02d", Math.abs(exp));
    }

    /** A JSON value as Python's str() showed it after json.loads (the Python writer's tag values). */
    private static String pyText(JsonNode v) {
        if (v.isBoolean()) return v.asBoolean() ? "True" : "False";
        if (v.isFloatingPointNumber()) return pyFloat(v.asDouble());
        if (v.isContainerNode()) return v.toString();
        return v.asText();
    }

    /**
     * One point as line protocol, or null when it has no field with a value. Tags are sorted by key and an empty
     * tag value is left out (line protocol has none); integers are written as integers ({@code 5i}), other numbers
     * as floats, and non-finite floats are left out, as the Python client did.
     */
    static Point encode(String measurement, String tagsJson, String fieldsJson, long ts) throws IOException {
        TreeMap<String, String> tags = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = JSON.readTree(tagsJson).fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            if (v != null && !v.isNull()) tags.put(e.getKey(), pyText(v));
        }
        TreeMap<String, JsonNode> sorted = new TreeMap<>(); // the Python client sorted fields by key
        for (Iterator<Map.Entry<String, JsonNode>> it = JSON.readTree(fieldsJson).fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            sorted.put(e.getKey(), e.getValue());
        }
        StringBuilder fields = new StringBuilder();
        for (Map.Entry<String, JsonNode> e : sorted.entrySet()) {
            JsonNode v = e.getValue();
            String value;
            if (v == null || v.isNull()) continue;
            else if (v.isBoolean()) value = v.asBoolean() ? "true" : "false";
            else if (v.isIntegralNumber()) value = v.asText() + "i";
            else if (v.isNumber()) {
                double d = v.asDouble();
                if (!Double.isFinite(d)) continue;
                value = pyFloat(d);
                if (value.endsWith(".0")) value = value.substring(0, value.length() - 2); // as the client trimmed
            } else value = "\"" + escape(v.isContainerNode() ? v.toString() : v.asText(), STRING) + "\"";
            if (fields.length() > 0) fields.append(',');
            fields.append(escape(e.getKey(), KEY)).append('=').append(value);
        }
        if (fields.length() == 0) return null;
        StringBuilder line = new StringBuilder(escape(measurement, MEASUREMENT));
        for (Map.Entry<String, String> t : tags.entrySet()) line.append(tag(t.getKey(), t.getValue()));
        line.append(' ').append(fields).append(' ').append(ts);
        return new Point(line.toString(), measurement, tags.getOrDefault("stream", ""), ts);
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }
}
