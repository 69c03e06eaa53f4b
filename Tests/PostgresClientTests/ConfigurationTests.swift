import Foundation
import Testing

@testable import PostgresClient

@Suite("PostgresConfiguration URL parsing")
struct ConfigurationTests {
    @Test func parsesEveryPart() throws {
        let configuration = try PostgresConfiguration(
            url: "postgres://alice:s%40cr%3At@db.example.com:6543/media%2Dnest?sslmode=require&application_name=worker%201")
        #expect(configuration.user == "alice")
        #expect(configuration.password == "s@cr:t")
        #expect(configuration.host == "db.example.com")
        #expect(configuration.port == 6543)
        #expect(configuration.database == "media-nest")
        #expect(configuration.sslMode == "require")
        #expect(configuration.applicationName == "worker 1")
        #expect(configuration.connectTimeout == 5)
        #expect(configuration.endpoint == "db.example.com:6543")
    }

    @Test func appliesDefaults() throws {
        let configuration = try PostgresConfiguration(url: "postgresql://localhost/medianest")
        #expect(configuration.user == nil)
        #expect(configuration.password == nil)
        #expect(configuration.port == 5432)
        #expect(configuration.sslMode == nil)
        #expect(configuration.applicationName == "medianest-worker")
        #expect(configuration.connectTimeout == 5)
        #expect(configuration.extraParameters.isEmpty)
    }

    @Test func userWithoutPasswordAndEmptyPassword() throws {
        let noPassword = try PostgresConfiguration(url: "postgres://medianest@127.0.0.1:5440/medianest")
        #expect(noPassword.user == "medianest")
        #expect(noPassword.password == nil)
        let emptyPassword = try PostgresConfiguration(url: "postgres://medianest:@127.0.0.1/medianest")
        #expect(emptyPassword.password == "")
    }

    @Test func ipv6AndSocketHosts() throws {
        let ipv6 = try PostgresConfiguration(url: "postgres://u@[::1]:5440/db")
        #expect(ipv6.host == "::1")
        #expect(ipv6.port == 5440)
        #expect(ipv6.endpoint == "[::1]:5440")
        #expect(ipv6.redactedURL == "postgres://u@[::1]:5440/db")

        let socket = try PostgresConfiguration(url: "postgres://u@%2Frun%2Fpostgresql/db")
        #expect(socket.host == "/run/postgresql")
        let socketByParameter = try PostgresConfiguration(url: "postgres://u@localhost/db?host=/tmp")
        #expect(socketByParameter.host == "/tmp")
    }

    @Test func queryParameters() throws {
        let configuration = try PostgresConfiguration(
            url: "postgres://h/db?connect_timeout=12&options=-c%20search_path%3Dfoo&target_session_attrs=read-write&port=7000&user=bob")
        #expect(configuration.connectTimeout == 12)
        #expect(configuration.extraParameters["options"] == "-c search_path=foo")
        #expect(configuration.extraParameters["target_session_attrs"] == "read-write")
        #expect(configuration.port == 7000)
        #expect(configuration.user == "bob")
        let pairs = Dictionary(configuration.libpqParameters, uniquingKeysWith: { $1 })
        #expect(pairs["options"] == "-c search_path=foo -c TimeZone=UTC")
        #expect(pairs["connect_timeout"] == "12")
        #expect(pairs["client_encoding"] == "UTF8")
        #expect(pairs["application_name"] == "medianest-worker")
    }

    @Test func valuesThatNeedQuotingReachLibpqVerbatim() throws {
        // PQconnectdbParams takes values as they are: no conninfo quoting to get wrong.
        let configuration = try PostgresConfiguration(url: "postgres://o%27brien:p%20a%27s%5Cs@h/my%20db")
        let pairs = Dictionary(configuration.libpqParameters, uniquingKeysWith: { $1 })
        #expect(pairs["user"] == "o'brien")
        #expect(pairs["password"] == "p a's\\s")
        #expect(pairs["dbname"] == "my db")
        #expect(pairs["options"] == "-c TimeZone=UTC", "the session is in UTC unless told otherwise")
        var local = configuration
        local.timeZone = nil
        #expect(Dictionary(local.libpqParameters, uniquingKeysWith: { $1 })["options"] == nil)
    }

    @Test(arguments: [
        "",
        "localhost/medianest",
        "mysql://h/db",
        "http://h/db",
        "postgres://",
        "postgres:///db",
        "postgres://h",
        "postgres://h/",
        "postgres://h:0/db",
        "postgres://h:65536/db",
        "postgres://h:abc/db",
        "postgres://h:/db",
        "postgres://h:-1/db",
        "postgres://h1,h2/db",
        "postgres://h/a/b",
        "postgres://h/db#fragment",
        "postgres://h/my db",
        "postgres://[::1/db",
        "postgres://::1/db",
        "postgres://h/db?sslmode=maybe",
        "postgres://h/db?bogus=1",
        "postgres://h/db?sslmode",
        "postgres://h/db?connect_timeout=-1",
        "postgres://h/db?connect_timeout=soon",
        "postgres://u%zz@h/db",
        "postgres://u:%zz@h/db",
        "postgres://h/d%00b",
    ])
    func refusesBadURLs(url: String) {
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: url) }
        do {
            _ = try PostgresConfiguration(url: url)
        } catch {
            guard case .invalidURL(let reason) = error else {
                Issue.record("expected .invalidURL, got \(error)")
                return
            }
            #expect(!reason.isEmpty)
        }
    }

    @Test func errorsNameTheProblem() {
        func reason(_ url: String) -> String {
            do {
                _ = try PostgresConfiguration(url: url)
                return ""
            } catch {
                return error.description
            }
        }
        #expect(reason("mysql://h/db").contains("postgres://"))
        #expect(reason("postgres://h:99999/db").contains("port"))
        #expect(reason("postgres://h/db?sslmod=require").contains("'sslmod'"))
        #expect(reason("postgres://h/db?sslmode=maybe").contains("'maybe'"))
        #expect(reason("postgres://h").contains("database"))
    }

    @Test(arguments: [
        "postgres://user:hunter2secret@h:badport/db",
        "postgres://user:hunter2/secret@h/db",
        "postgres://user:hunter2?secret@h/db",
        "postgres://user:hunter2secret@h/db?sslmode=hunter2secret",
        "postgres://user:hunter2%zzsecret@h/db",
        "postgres://user:hunter2secret@h1,h2/db",
        "postgres://user:hunter2 secret@h/db",
        "postgres://user:hunter2:secret@h:1:2/db",
        "postgres://user:hunter2secret@h/db?hunter2secret=1",
    ])
    func invalidURLErrorsNeverShowThePassword(url: String) {
        do {
            _ = try PostgresConfiguration(url: url)
            Issue.record("expected \(url) to be refused")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(!error.description.contains("secret"))
            #expect(!String(reflecting: error).contains("hunter2"))
        }
    }

    @Test func redaction() throws {
        let configuration = try PostgresConfiguration(
            url: "postgresql://worker:top%2Fsecret@db.internal:5433/medianest?sslmode=verify-full&application_name=w1")
        #expect(configuration.redactedURL == "postgres://worker:***@db.internal:5433/medianest?sslmode=verify-full&application_name=w1")
        #expect(configuration.description == configuration.redactedURL)
        #expect(!"\(configuration)".contains("secret"))
        #expect(!String(reflecting: configuration).contains("secret"))
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!dumped.contains("secret"))
        #expect(dumped.contains("db.internal"))

        let withoutPassword = try PostgresConfiguration(url: "postgres://worker@db/medianest")
        #expect(withoutPassword.redactedURL == "postgres://worker@db:5432/medianest")
        let anonymous = try PostgresConfiguration(url: "postgres://db/medianest")
        #expect(anonymous.redactedURL == "postgres://db:5432/medianest")
    }

    @Test func equatable() throws {
        let a = try PostgresConfiguration(url: "postgres://u:p@h:1/db")
        var b = try PostgresConfiguration(url: "postgresql://u:p@h:1/db")
        #expect(a == b)
        b.connectTimeout = 9
        #expect(a != b)
        let c = try PostgresConfiguration(url: "postgres://u:other@h:1/db")
        #expect(a != c)
    }

    @Test func scrubRemovesThePassword() throws {
        let configuration = try PostgresConfiguration(url: "postgres://u:Sw0rdfish@h/db")
        #expect(configuration.scrub("auth failed for Sw0rdfish here") == "auth failed for *** here")
    }
}
