package lab.clickstream;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.Set;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * Parses and validates one clickstream message, once. A table function (LATERAL TABLE) so the planner
 * evaluates it a single time per record and every metric reads its columns; the rules and reasons are
 * documented in docs/event-schema.md. `reason` is null for a valid event, "control" for a watermark marker.
 *
 * <p>The same check decides the record's event time for the watermark (ClickEventTime): a message that
 * fails validation must never move the watermark, whatever its Kafka timestamp or its own timestamp say.
 * The last result is cached per thread (keyed by the payload), so the source's watermark expression, the
 * rowtime column and this function parse each record once between them.
 */
@FunctionHint(output = @DataTypeHint(
    "ROW<reason STRING, event_type STRING, user_id STRING, session_id STRING, url STRING, http_method STRING, "
        + "http_status INT, latency_ms DOUBLE, country STRING, device STRING, ts_raw BIGINT, payload_text STRING>"))
public class ParseClick extends TableFunction<Row> {
    static final int MAX_PAYLOAD = 16384;
    static final double MAX_LATENCY_MS = 600_000;
    static final long MAX_PAST_MS = 7L * 24 * 3600 * 1000;
    static final long MAX_FUTURE_MS = 3600L * 1000;
    /** An event time further ahead of its Kafka timestamp than this is not trusted: below the watermark
     *  alignment's max drift (20 s), so one such event cannot run its partition ahead and stall it. */
    static final long MAX_AHEAD_MS = 10_000;
    /** How far an end marker may lead its record's Kafka timestamp: far enough to close the window of an event
     *  sent just before it (one 10 s window, the 5 s watermark delay and 1 s past that event, which may itself
     *  lead by MAX_AHEAD_MS), and no further. A marker an hour ahead would move its partition's watermark past
     *  windows still being filled, making every later event late: it goes to the DLQ instead. */
    static final long MAX_MARKER_AHEAD_MS = 26_000;
    static final int MAX_ID_CHARS = 64;
    static final int MAX_URL_CHARS = 1024;
    static final int MAX_TAG_CHARS = 32;
    /** Dead letters carry at most this much of the payload, so one always fits the DLQ topic's 1 MB limit. */
    static final int MAX_DLQ_PAYLOAD_CHARS = 16384;
    static final long YEAR_3000_MS = 32503680000000L;
    static final Set<String> METHODS = Set.of("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS");
    static final String METHODS_TEXT = "GET POST PUT PATCH DELETE HEAD OPTIONS";

    private static final ObjectMapper MAPPER = new ObjectMapper();

    static {
        MAPPER.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
    }

    /** The outcome of checking one message: a reason (null = valid, "control" = end marker) and the values. */
    static final class Checked {
        final byte[] payload;
        final long kafkaMs;
        final Row row;
        final Long eventMs; // the event time a valid event (or control marker) carries; null otherwise

        Checked(byte[] payload, long kafkaMs, Row row, Long eventMs) {
            this.payload = payload;
            this.kafkaMs = kafkaMs;
            this.row = row;
            this.eventMs = eventMs;
        }
    }

    private static final ThreadLocal<Checked> LAST = new ThreadLocal<>();

    /** Check a message, reusing this thread's last result when it is the same record. */
    static Checked check(byte[] payload, Instant kafkaTs) {
        long kafka = kafkaTs == null ? System.currentTimeMillis() : kafkaTs.toEpochMilli();
        Checked last = LAST.get();
        if (last != null && last.kafkaMs == kafka
                && (last.payload == payload || (payload != null && Arrays.equals(last.payload, payload)))) {
            return last;
        }
        Checked c = doCheck(payload, kafka);
        LAST.set(c);
        return c;
    }

    public void eval(byte[] payload, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant kafkaTs) {
        collect(check(payload, kafkaTs).row);
    }

    private static Checked bad(byte[] payload, long kafka, String reason, String text) {
        if (text != null && text.length() > MAX_DLQ_PAYLOAD_CHARS) {
            text = text.substring(0, MAX_DLQ_PAYLOAD_CHARS) + "...[truncated: " + payload.length + " bytes in all]";
        }
        return new Checked(payload, kafka, Row.of(reason, null, null, null, null, null, null, null, null, null, null, text), null);
    }

    private static Checked doCheck(byte[] payload, long kafka) {
        if (payload == null) { return bad(payload, kafka, "null value", null); }
        if (payload.length == 0) { return bad(payload, kafka, "empty message", ""); }
        if (payload.length > MAX_PAYLOAD) {
            return bad(payload, kafka, "oversized payload (> " + MAX_PAYLOAD + " bytes)", new String(payload, StandardCharsets.UTF_8));
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(payload)).toString();
        } catch (CharacterCodingException e) {
            return bad(payload, kafka, "invalid UTF-8", new String(payload, StandardCharsets.UTF_8));
        }
        JsonNode root;
        try {
            root = MAPPER.readTree(text);
        } catch (Exception e) {
            String m = String.valueOf(e.getMessage());
            return bad(payload, kafka, m.startsWith("Duplicate field") ? "duplicate JSON key" : "malformed JSON", text);
        }
        if (root == null || root.isMissingNode()) { return bad(payload, kafka, "malformed JSON", text); }
        if (!root.isObject()) { return bad(payload, kafka, "not a JSON object", text); }
        String eventType = scalar(root.get("event_type"));
        if ("watermark".equals(eventType)) {
            // A control message is checked like an event: a marker the job cannot trust never moves the
            // watermark and goes to the DLQ with its reason, so whoever sent it can see why.
            Long marker = epochMillis(root.get("event_timestamp"));
            if (marker == null) {
                return bad(payload, kafka, missingOr(root, "event_timestamp",
                    "watermark marker: event_timestamp must be epoch milliseconds"), text);
            }
            if (marker < 0 || marker < kafka - MAX_PAST_MS) {
                return bad(payload, kafka, "watermark marker: event_timestamp too far in the past", text);
            }
            if (marker > kafka + MAX_MARKER_AHEAD_MS) {
                return bad(payload, kafka, "watermark marker: event_timestamp ahead of the record's Kafka timestamp (> 26 s)", text);
            }
            return new Checked(payload, kafka, Row.of("control", null, null, null, null, null, null, null, null, null, null, null),
                marker);
        }

        String user = scalar(root.get("user_id"));
        if (user == null || user.isEmpty()) { return bad(payload, kafka, missingOr(root, "user_id", "user_id must be a string"), text); }
        String session = scalar(root.get("session_id"));
        if (session == null || session.isEmpty()) {
            return bad(payload, kafka, missingOr(root, "session_id", "session_id must be a string"), text);
        }
        String url = scalar(root.get("url"));
        if (url == null || !url.startsWith("/")) {
            return bad(payload, kafka, missingOr(root, "url", "url must be a string starting with /"), text);
        }
        String method = scalar(root.get("http_method"));
        if (method == null || !METHODS.contains(method)) {
            return bad(payload, kafka, missingOr(root, "http_method", "http_method must be one of " + METHODS_TEXT), text);
        }
        Double statusD = number(root.get("http_status"));
        if (statusD == null || statusD > Integer.MAX_VALUE || statusD < Integer.MIN_VALUE || statusD != Math.rint(statusD)) {
            return bad(payload, kafka, missingOr(root, "http_status", "http_status must be an integer"), text);
        }
        int status = (int) statusD.doubleValue();
        if (status < 100 || status > 599) { return bad(payload, kafka, "http_status out of range (100-599)", text); }
        Double latency = number(root.get("latency_ms"));
        if (latency == null || latency < 0 || latency > MAX_LATENCY_MS) {
            return bad(payload, kafka, missingOr(root, "latency_ms", "latency_ms must be a number between 0 and 600000"), text);
        }
        Long ts = epochMillis(root.get("event_timestamp"));
        if (ts == null) {
            return bad(payload, kafka, missingOr(root, "event_timestamp", "event_timestamp must be epoch milliseconds"), text);
        }
        if (ts < 0 || ts < kafka - MAX_PAST_MS) { return bad(payload, kafka, "event_timestamp too far in the past", text); }
        if (ts > YEAR_3000_MS || ts > kafka + MAX_FUTURE_MS) { return bad(payload, kafka, "event_timestamp too far in the future", text); }
        if (ts > kafka + MAX_AHEAD_MS) {
            return bad(payload, kafka, "event_timestamp ahead of the record's Kafka timestamp (> 10 s)", text);
        }
        String country = scalar(root.get("country"));
        String device = scalar(root.get("device"));
        if (user.length() > MAX_ID_CHARS) { return bad(payload, kafka, "user_id longer than 64 characters", text); }
        if (session.length() > MAX_ID_CHARS) { return bad(payload, kafka, "session_id longer than 64 characters", text); }
        if (url.length() > MAX_URL_CHARS) { return bad(payload, kafka, "url longer than 1024 characters", text); }
        if ((country != null && country.length() > MAX_TAG_CHARS) || (device != null && device.length() > MAX_TAG_CHARS)) {
            return bad(payload, kafka, "country and device must be at most 32 characters", text);
        }
        Row row = Row.of(null, eventType, user, session, url, method, status, latency,
            country == null ? "unknown" : country, device == null ? "unknown" : device, ts, null);
        return new Checked(payload, kafka, row, ts);
    }

    /** The text of a scalar (numbers and booleans as text, like JSON_VALUE); null for null, objects, arrays. */
    static String scalar(JsonNode n) {
        return n == null || n.isNull() || n.isContainerNode() ? null : n.asText();
    }

    static String missingOr(JsonNode root, String field, String wrong) {
        return root.has(field) ? wrong : "missing field: " + field;
    }

    /** A number, or a string holding one (like TRY_CAST); null otherwise. */
    static Double number(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isNumber()) return n.asDouble();
        if (n.isTextual()) {
            try {
                double d = Double.parseDouble(n.asText().trim());
                return Double.isFinite(d) ? d : null;
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }

    static Long epochMillis(JsonNode n) {
        if (n == null || n.isNull()) return null;
        if (n.isIntegralNumber()) return n.canConvertToLong() ? n.asLong() : null;
        if (n.isNumber()) return (long) n.asDouble();
        if (n.isTextual()) {
            try {
                return Long.parseLong(n.asText().trim());
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }
}
