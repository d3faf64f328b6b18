package lab.clickstream;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Set;

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
 */
@FunctionHint(output = @DataTypeHint(
    "ROW<reason STRING, event_type STRING, user_id STRING, session_id STRING, url STRING, http_method STRING, "
        + "http_status INT, latency_ms DOUBLE, country STRING, device STRING, ts_raw BIGINT, payload_text STRING>"))
public class ParseClick extends TableFunction<Row> {
    static final int MAX_PAYLOAD = 16384;
    static final double MAX_LATENCY_MS = 600_000;
    static final long MAX_PAST_MS = 7L * 24 * 3600 * 1000;
    static final long MAX_FUTURE_MS = 3600L * 1000;
    static final long YEAR_3000_MS = 32503680000000L;
    static final Set<String> METHODS = Set.of("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS");
    static final String METHODS_TEXT = "GET POST PUT PATCH DELETE HEAD OPTIONS";

    private transient ObjectMapper mapper;

    private void bad(String reason, String text) {
        collect(Row.of(reason, null, null, null, null, null, null, null, null, null, null, text));
    }

    public void eval(byte[] payload, @DataTypeHint("TIMESTAMP_LTZ(3)") Instant kafkaTs) {
        if (mapper == null) {
            mapper = new ObjectMapper();
        }
        if (payload == null) { bad("null value", null); return; }
        if (payload.length == 0) { bad("empty message", ""); return; }
        String lossy = null;
        if (payload.length > MAX_PAYLOAD) {
            bad("oversized payload (> " + MAX_PAYLOAD + " bytes)", new String(payload, StandardCharsets.UTF_8));
            return;
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(payload)).toString();
        } catch (CharacterCodingException e) {
            bad("invalid UTF-8", new String(payload, StandardCharsets.UTF_8));
            return;
        }
        JsonNode root;
        try {
            root = mapper.readTree(text);
        } catch (Exception e) {
            bad("malformed JSON", text);
            return;
        }
        if (root == null || root.isMissingNode()) { bad("malformed JSON", text); return; }
        if (!root.isObject()) { bad("not a JSON object", text); return; }
        String eventType = scalar(root.get("event_type"));
        if ("watermark".equals(eventType)) { bad("control", null); return; }

        String user = scalar(root.get("user_id"));
        if (user == null || user.isEmpty()) { bad(missingOr(root, "user_id", "user_id must be a string"), text); return; }
        String session = scalar(root.get("session_id"));
        if (session == null || session.isEmpty()) {
            bad(missingOr(root, "session_id", "session_id must be a string"), text);
            return;
        }
        String url = scalar(root.get("url"));
        if (url == null || !url.startsWith("/")) {
            bad(missingOr(root, "url", "url must be a string starting with /"), text);
            return;
        }
        String method = scalar(root.get("http_method"));
        if (method == null || !METHODS.contains(method)) {
            bad(missingOr(root, "http_method", "http_method must be one of " + METHODS_TEXT), text);
            return;
        }
        Double statusD = number(root.get("http_status"));
        if (statusD == null || statusD > Integer.MAX_VALUE || statusD < Integer.MIN_VALUE) {
            bad(missingOr(root, "http_status", "http_status must be an integer"), text);
            return;
        }
        int status = (int) statusD.doubleValue();
        if (status < 100 || status > 599) { bad("http_status out of range (100-599)", text); return; }
        Double latency = number(root.get("latency_ms"));
        if (latency == null || latency < 0 || latency > MAX_LATENCY_MS) {
            bad(missingOr(root, "latency_ms", "latency_ms must be a number between 0 and 600000"), text);
            return;
        }
        Long ts = epochMillis(root.get("event_timestamp"));
        if (ts == null) {
            bad(missingOr(root, "event_timestamp", "event_timestamp must be epoch milliseconds"), text);
            return;
        }
        long kafka = kafkaTs == null ? System.currentTimeMillis() : kafkaTs.toEpochMilli();
        if (ts < 0 || ts < kafka - MAX_PAST_MS) { bad("event_timestamp too far in the past", text); return; }
        if (ts > YEAR_3000_MS || ts > kafka + MAX_FUTURE_MS) { bad("event_timestamp too far in the future", text); return; }
        String country = scalar(root.get("country"));
        String device = scalar(root.get("device"));
        collect(Row.of(null, eventType, user, session, url, method, status, latency,
            country == null ? "unknown" : country, device == null ? "unknown" : device, ts, null));
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
