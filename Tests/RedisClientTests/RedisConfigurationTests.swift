import Foundation
import RedisClient
import Testing

@Suite("RedisConfiguration URL parsing")
struct RedisConfigurationTests {
    @Test func plainURL() throws {
        let c = try RedisConfiguration(url: "redis://127.0.0.1:6390/0")
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 6390)
        #expect(c.database == 0)
        #expect(c.username == nil)
        #expect(c.password == nil)
        #expect(c.unixSocketPath == nil)
        #expect(c.connectTimeout == 2)
        #expect(c.socketTimeout == 10)
        #expect(c.redactedURL == "redis://127.0.0.1:6390/0")
    }

    @Test func defaults() throws {
        let c = try RedisConfiguration(url: "redis://cache.internal")
        #expect(c.host == "cache.internal")
        #expect(c.port == 6379)
        #expect(c.database == 0)
        #expect(c == RedisConfiguration(host: "cache.internal"))
        #expect(try RedisConfiguration(url: "redis://") == RedisConfiguration())
        #expect(try RedisConfiguration(url: "REDIS://h:1/").port == 1)
    }

    @Test func passwordOnly() throws {
        let c = try RedisConfiguration(url: "redis://:s3cret-pw@example.com:6380/2")
        #expect(c.host == "example.com")
        #expect(c.port == 6380)
        #expect(c.database == 2)
        #expect(c.username == nil)
        #expect(c.password == "s3cret-pw")
        #expect(c.redactedURL == "redis://:***@example.com:6380/2")
    }

    @Test func userAndEncodedPassword() throws {
        let c = try RedisConfiguration(url: "redis://worker:p%40ss%3Aw0rd@10.0.0.5/5")
        #expect(c.username == "worker")
        #expect(c.password == "p@ss:w0rd")
        #expect(c.host == "10.0.0.5")
        #expect(c.database == 5)
        #expect(c.redactedURL == "redis://worker:***@10.0.0.5:6379/5")
        // An unencoded "@" in the password is tolerated: user information ends at the last "@".
        let loose = try RedisConfiguration(url: "redis://:a@b@host:7000")
        #expect(loose.password == "a@b")
        #expect(loose.host == "host")
    }

    @Test func ipv6QueryAndUnix() throws {
        let v6 = try RedisConfiguration(url: "redis://[::1]:7000/1")
        #expect(v6.host == "::1")
        #expect(v6.port == 7000)
        #expect(v6.database == 1)
        #expect(v6.redactedURL == "redis://[::1]:7000/1")
        #expect(v6.address == "[::1]:7000")

        #expect(try RedisConfiguration(url: "redis://h?db=3").database == 3)

        let unix = try RedisConfiguration(url: "unix://:pw@/run/redis/redis.sock?db=2")
        #expect(unix.unixSocketPath == "/run/redis/redis.sock")
        #expect(unix.database == 2)
        #expect(unix.password == "pw")
        #expect(unix.redactedURL == "unix://:***@/run/redis/redis.sock?db=2")
        #expect(unix.address == "unix:/run/redis/redis.sock")
    }

    @Test func tlsIsRefusedClearly() {
        #expect(throws: RedisError.self) { try RedisConfiguration(url: "rediss://h:6380") }
        do {
            _ = try RedisConfiguration(url: "rediss://:topsecret@h:6380")
        } catch {
            #expect(error.description.contains("TLS is not supported"))
            #expect(!error.description.contains("topsecret"))
        }
    }

    @Test(arguments: [
        ("http://h:6379", "scheme"),
        ("127.0.0.1:6379", "redis://"),
        ("redis://h:abc", "port"),
        ("redis://h:0", "port"),
        ("redis://h:70000", "port"),
        ("redis://h/x", "database"),
        ("redis://h/-1", "database"),
        ("redis://h/0/1", "database"),
        ("redis://h?timeout=3", "timeout"),
        ("redis://[::1:6379", "IPv6"),
        ("unix://relative.sock", "absolute"),
        ("redis://h ost:6379", "host"),
    ])
    func badURLs(url: String, mentions: String) {
        do {
            let c = try RedisConfiguration(url: url)
            Issue.record("\(url) parsed as \(c)")
        } catch {
            guard case .invalidURL(let message) = error else {
                Issue.record("expected .invalidURL, got \(error)")
                return
            }
            #expect(message.contains(mentions), "\(message)")
        }
    }

    @Test func errorsNeverShowThePassword() {
        for url in ["redis://:hunter2@h:port", "redis://u:hunter2@h/db", "redis://hunter2@h", "redis://:hunter2@h?x=1", "ftp://:hunter2@h"]
        {
            do {
                _ = try RedisConfiguration(url: url)
                Issue.record("\(url) should not parse")
            } catch {
                #expect(!error.description.contains("hunter2"), "\(error)")
                #expect(error.description.contains("***"), "\(error)")
            }
        }
    }

    @Test func printingNeverShowsThePassword() throws {
        var c = try RedisConfiguration(url: "redis://admin:hunter2@h:1/0")
        c.socketTimeout = 30
        var dumped = ""
        dump(c, to: &dumped)
        for text in [c.description, c.debugDescription, "\(c)", String(reflecting: c), dumped, c.redactedURL] {
            #expect(!text.contains("hunter2"), "\(text)")
        }
        #expect(c.redactedURL == "redis://admin:***@h:1/0")
        // Programmatic configuration: a username without a password is not used, nor shown.
        #expect(RedisConfiguration(username: "u").redactedURL == "redis://127.0.0.1:6379/0")
    }

    @Test func redactedURLParsesBack() throws {
        let c = try RedisConfiguration(url: "redis://user:pw@h:6390/4")
        let back = try RedisConfiguration(url: c.redactedURL)
        #expect(back.host == c.host && back.port == c.port && back.database == c.database && back.username == c.username)
        #expect(back.password == "***")
    }
}

@Suite("RedisValue and RedisCommand")
struct RedisValueTests {
    @Test func accessors() {
        #expect(RedisValue.bulk(Array("42".utf8)).int == 42)
        #expect(RedisValue.status("17").int == 17)
        #expect(RedisValue.integer(-5).int == -5)
        #expect(RedisValue.bulk(Array("x".utf8)).int == nil)
        #expect(RedisValue.bulk(Array("1.5".utf8)).double == 1.5)
        #expect(RedisValue.bulk(Array("inf".utf8)).double == .infinity)
        #expect(RedisValue.bulk(Array("-inf".utf8)).double == -.infinity)
        #expect(RedisValue.integer(3).double == 3)
        #expect(RedisValue.bulk([0x68, 0xFF]).string == "h\u{FFFD}")
        #expect(RedisValue.status("OK").string == "OK")
        #expect(RedisValue.error("ERR x").string == nil)
        #expect(RedisValue.error("ERR x").errorMessage == "ERR x")
        #expect(RedisValue.null.isNull)
        #expect(!RedisValue.bulk([]).isNull)
        #expect(RedisValue.array([.null]).array == [.null])
        #expect(RedisValue.null.array == nil)
        #expect(RedisValue.bulk([0, 1]).bytes == [0, 1])
        #expect(RedisValue.integer(1).bytes == nil)
    }

    @Test func commands() {
        var c: RedisCommand = ["xadd", "s", "*"]
        c.append("field")
        c.append(bytes: [0, 255])
        c.append(12)
        c.append(Int64(-3))
        c.append(Double.infinity)
        #expect(
            c.arguments == [
                Array("xadd".utf8), [115], [42], Array("field".utf8), [0, 255], Array("12".utf8), Array("-3".utf8), Array("+inf".utf8),
            ])
        #expect(c.name == "XADD")
        #expect(RedisCommand(["AUTH", "user", "hunter2"]).description == "AUTH (2 arguments)")
        #expect(RedisCommand(bytes: [[1]]) == RedisCommand(bytes: [[1]]))
    }

    @Test func errorHelpers() {
        #expect(RedisError.server("BUSYGROUP Consumer Group name already exists").serverErrorCode == "BUSYGROUP")
        #expect(RedisError.closed.serverErrorCode == nil)
        #expect(RedisError.closed.isConnectionFailure)
        #expect(RedisError.connection("x").isConnectionFailure)
        #expect(!RedisError.server("ERR").isConnectionFailure)
        #expect(RedisError.server("NOGROUP x").description.contains("NOGROUP x"))
    }
}
