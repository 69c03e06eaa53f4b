# Sidekiq (Debian ruby-sidekiq 6.4): no-op jobs.
#
#   ruby sidekiq_noop.rb enqueue                      N jobs through Sidekiq::Client.push_bulk
#   sidekiq -r ./sidekiq_noop.rb -c 25 -q default     the worker (basic fetch), logger at warn
#
# Environment: REDIS_URL (read by Sidekiq itself), PEERS_JOBS.
require "sidekiq"

N = Integer(ENV.fetch("PEERS_JOBS"))

Sidekiq.logger.level = Logger::WARN # no per-job start/done lines
# Debian's redis-rb 4.8 warns on stderr at every BRPOP of Sidekiq 6.4's basic fetch (timeout passed
# positionally): two lines per job, which would be per-job logging. Silence it.
Redis.silence_deprecations = true

class NoopJob
  include Sidekiq::Worker
  sidekiq_options queue: "default", retry: false

  LOCK = Mutex.new
  @done = 0
  @first = nil
  class << self
    attr_accessor :done, :first
  end

  def perform(_i)
    now = Process.clock_gettime(Process::CLOCK_REALTIME)
    finished = LOCK.synchronize do
      if NoopJob.first.nil?
        NoopJob.first = now
        $stdout.puts "START #{now}"
        $stdout.flush
      end
      NoopJob.done += 1
    end
    return unless finished == N

    $stdout.puts "DONE #{N} #{NoopJob.first} #{Process.clock_gettime(Process::CLOCK_REALTIME)}", "END"
    $stdout.flush
  end
end

if $PROGRAM_NAME == __FILE__ && ARGV.first == "enqueue"
  (0...N).each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] }) }
  puts "ENQUEUED #{Sidekiq.redis { |r| r.llen("queue:default") }}"
end
