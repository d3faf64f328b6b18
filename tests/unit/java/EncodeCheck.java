package lab.clickstream;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/** Test harness: each stdin line is a JSON array [measurement, tags JSON, fields JSON, ts]; prints the line
 * InfluxWriter.encode makes of it, or "<none>" when it makes none, each ended by a NUL. */
public class EncodeCheck {
    public static void main(String[] args) throws Exception {
        ObjectMapper json = new ObjectMapper();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String s; (s = in.readLine()) != null; ) {
            JsonNode a = json.readTree(s);
            InfluxWriter.Point p = InfluxWriter.encode(a.get(0).asText(), a.get(1).asText(), a.get(2).asText(),
                    a.get(3).asLong());
            // one output per case, ended by NUL: a string field may hold a newline, which line protocol keeps raw
            out.append(p == null ? "<none>" : p.line()).append('\0');
        }
        System.out.write(out.toString().getBytes(StandardCharsets.UTF_8));
        System.out.flush();
    }
}
