package lab.clickstream;

import java.util.Set;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.FactoryUtil;

/**
 * The {@code labkit-influx} table connector: rows of (measurement STRING, tags STRING, fields STRING, ts BIGINT),
 * tags and fields as JSON objects and ts in epoch milliseconds, written to InfluxDB 2 as line protocol.
 *
 * <p>Why in the JVM: it was a Python (pandas) UDF, the only Python in the job. That made every TaskManager start
 * Python workers (about a minute on a 2-core machine before the first checkpoint), and Flink 2.2's Python runner
 * can take a whole TaskManager down while a job's tasks are cancelled, which a failover does. The rules are the
 * Python writer's (see {@link InfluxWriter}).
 */
public class InfluxSinkFactory implements DynamicTableSinkFactory {
    public static final ConfigOption<String> URL = ConfigOptions.key("url").stringType().noDefaultValue();
    public static final ConfigOption<String> ORG = ConfigOptions.key("org").stringType().noDefaultValue();
    public static final ConfigOption<String> BUCKET = ConfigOptions.key("bucket").stringType().noDefaultValue();
    public static final ConfigOption<String> TOKEN_FILE =
            ConfigOptions.key("token-file").stringType().defaultValue("");
    public static final ConfigOption<String> TOKEN_ENV = ConfigOptions.key("token-env").stringType().defaultValue("");
    // InfluxDB's docs: "batch writes ... optimal batch size is 5000 lines of line protocol"
    public static final ConfigOption<Integer> BATCH_SIZE = ConfigOptions.key("batch-size").intType().defaultValue(5000);

    @Override
    public String factoryIdentifier() {
        return "labkit-influx";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(URL, ORG, BUCKET);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(TOKEN_FILE, TOKEN_ENV, BATCH_SIZE);
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        helper.validate();
        ReadableConfig o = helper.getOptions();
        return new TableSink(new InfluxWriter.Options(
                o.get(URL), o.get(ORG), o.get(BUCKET), o.get(TOKEN_FILE), o.get(TOKEN_ENV), o.get(BATCH_SIZE)));
    }

    /** Accepts any changelog: -U and -D rows are skipped, so an updating query upserts (a point rewritten with
     * the same measurement, tags and time replaces the fields it names). */
    static final class TableSink implements DynamicTableSink {
        private final InfluxWriter.Options options;

        TableSink(InfluxWriter.Options options) {
            this.options = options;
        }

        @Override
        public ChangelogMode getChangelogMode(ChangelogMode requestedMode) {
            return requestedMode;
        }

        @Override
        public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
            return SinkV2Provider.of(new InfluxSink(options));
        }

        @Override
        public DynamicTableSink copy() {
            return new TableSink(options);
        }

        @Override
        public String asSummaryString() {
            return "InfluxDB (" + options.bucket + ")";
        }
    }
}
