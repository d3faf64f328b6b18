package org.apache.beam.sdk.fn.server;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.apache.beam.model.pipeline.v1.Endpoints.ApiServiceDescriptor;
import org.apache.beam.vendor.grpc.v1p60p1.io.grpc.BindableService;
import org.apache.beam.vendor.grpc.v1p60p1.io.grpc.Server;
import org.apache.beam.vendor.grpc.v1p60p1.io.grpc.ServerInterceptors;
import org.apache.beam.vendor.grpc.v1p60p1.io.grpc.netty.NettyServerBuilder;

/**
 * Compile-time stand-in for the outer class: only the nested InetSocketAddressServerFactory below is
 * packaged (labkit/stack/provision/loopback.py); the real ServerFactory stays the one in flink-python.
 *
 * <p>Why: the TaskManager starts one gRPC server per Python worker channel (control, data, state,
 * logging, provisioning). PyFlink 2.2's bundled factory picks a loopback address but then binds the port
 * on every interface (the host is dropped when the server is built), so a running job listened on a dozen
 * ports reachable from the network. This implementation binds the loopback address it advertises.
 *
 * <p>Which loopback address: the system property {@code labkit.grpc.bind} (the TaskManager's bind host,
 * set by labkit), else the JVM's loopback address. A workshop attendee's own Flink cluster binds everything,
 * these servers included, to an address of its own (127.0.2.N) that only its attendee may connect to.
 */
public abstract class ServerFactory {
    public abstract Server allocateAddressAndCreate(List<BindableService> services, ApiServiceDescriptor.Builder builder)
        throws IOException;

    public abstract Server create(List<BindableService> services, ApiServiceDescriptor descriptor) throws IOException;

    public interface UrlFactory {
        String createUrl(String address, int port);
    }

    public static class InetSocketAddressServerFactory extends ServerFactory {
        private final UrlFactory urlFactory;
        private final Supplier<Integer> portSupplier;

        private InetSocketAddressServerFactory(UrlFactory urlFactory) {
            this(urlFactory, () -> 0);
        }

        private InetSocketAddressServerFactory(UrlFactory urlFactory, Supplier<Integer> portSupplier) {
            this.urlFactory = urlFactory;
            this.portSupplier = portSupplier;
        }

        @Override
        public Server allocateAddressAndCreate(List<BindableService> services, ApiServiceDescriptor.Builder builder)
                throws IOException {
            InetSocketAddress address = new InetSocketAddress(bindAddress(), portSupplier.get());
            Server server = createServer(services, address);
            builder.setUrl(urlFactory.createUrl(address.getHostString(), server.getPort()));
            return server;
        }

        @Override
        public Server create(List<BindableService> services, ApiServiceDescriptor descriptor) throws IOException {
            String url = descriptor.getUrl();
            int colon = url.lastIndexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("expected host:port, got " + url);
            }
            String host = url.substring(0, colon);
            int port = Integer.parseInt(url.substring(colon + 1));
            return createServer(services, new InetSocketAddress(host, port));
        }

        private static InetAddress bindAddress() throws IOException {
            String host = System.getProperty("labkit.grpc.bind", "");
            return host.isEmpty() ? InetAddress.getLoopbackAddress() : InetAddress.getByName(host);
        }

        private static Server createServer(List<BindableService> services, InetSocketAddress address) throws IOException {
            NettyServerBuilder builder = NettyServerBuilder.forAddress(address)
                .maxInboundMessageSize(Integer.MAX_VALUE)
                .permitKeepAliveTime(19, TimeUnit.SECONDS);
            for (BindableService s : services) {
                // the services read the worker id from the call's headers through this interceptor
                builder.addService(ServerInterceptors.intercept(s, GrpcContextHeaderAccessorProvider.interceptor()));
            }
            return builder.build().start();
        }
    }
}
