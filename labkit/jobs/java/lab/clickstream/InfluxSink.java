package lab.clickstream;

import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;

/** Sink V2 for the {@code labkit-influx} connector: one {@link InfluxWriter} per parallel instance. */
public class InfluxSink implements Sink<RowData> {
    private static final long serialVersionUID = 1L;
    private final InfluxWriter.Options options;

    public InfluxSink(InfluxWriter.Options options) {
        this.options = options;
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) {
        return new InfluxWriter(options, context);
    }
}
