/** A shared once-a-second clock for elapsed times; one timer for the whole app, not one per row. */
class Clock {
  now = $state(Date.now());

  constructor() {
    setInterval(() => (this.now = Date.now()), 1000);
  }
}

export const clock = new Clock();
